"""`make run`: the whole app on one machine, on the embedded defaults.

Starts the local gateway servers (unless real ones are configured), migrates, seeds the demo,
then runs the web app, a Celery worker and Celery beat until Ctrl-C, and stops them all.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

# Local servers standing in for the gateways in a dev stack; keys are for these servers only.
LOCAL_STRIPE_PORT = 12111
LOCAL_NMI_PORT = 12112
LOCAL_GATEWAY_ENV = {
    "STRIPE_SECRET_KEY": "sk_test_local_dev_stack",
    "STRIPE_API_BASE": f"http://127.0.0.1:{LOCAL_STRIPE_PORT}",
    "STRIPE_WEBHOOK_SECRET": "whsec_local_dev_stack",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_local_dev_stack",
    "STRIPE_JS_URL": f"http://127.0.0.1:{LOCAL_STRIPE_PORT}/js.stripe.com/v3/",
    "NMI_SECURITY_KEY": "local-dev-stack-nmi-key",
    "NMI_API_URL": f"http://127.0.0.1:{LOCAL_NMI_PORT}/api/transact.php",
    "NMI_QUERY_URL": f"http://127.0.0.1:{LOCAL_NMI_PORT}/api/query.php",
    "NMI_WEBHOOK_SIGNING_KEY": "local-dev-stack-nmi-webhook-key",
    "NMI_TOKENIZATION_KEY": "local-dev-stack-nmi-tokenization-key",
    "NMI_COLLECT_JS_URL": f"http://127.0.0.1:{LOCAL_NMI_PORT}/token/Collect.js",
}

LOCAL_BELUGA_PORT = 12113
LOCAL_DISPENSEPRO_PORT = 12114
LOCAL_INTEGRATION_ENV = {
    "BELUGA_API_URL": f"http://127.0.0.1:{LOCAL_BELUGA_PORT}",
    "BELUGA_API_KEY": "local-dev-stack-beluga-key",
    "BELUGA_WEBHOOK_SECRET": "local-dev-stack-beluga-webhook-secret",
    "DISPENSEPRO_API_URL": f"http://127.0.0.1:{LOCAL_DISPENSEPRO_PORT}",
    "DISPENSEPRO_API_KEY": "local-dev-stack-dispensepro-key",
    "DISPENSEPRO_WEBHOOK_SECRET": "local-dev-stack-dispensepro-webhook-secret",
}


@dataclass
class Child:
    name: str
    process: subprocess.Popen


class Command(BaseCommand):
    help = "Run the web app, a Celery worker, beat and local gateway servers together (make run)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, port: int, **options):
        base = Path(settings.BASE_DIR)
        (base / "var").mkdir(exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        local_gateways = not os.environ.get("STRIPE_SECRET_KEY") and not os.environ.get(
            "NMI_SECURITY_KEY"
        )
        if local_gateways:
            env.update(LOCAL_GATEWAY_ENV)
        local_integrations = not os.environ.get("BELUGA_API_KEY") and not os.environ.get(
            "DISPENSEPRO_API_KEY"
        )
        if local_integrations:
            env.update(LOCAL_INTEGRATION_ENV)
        python = sys.executable
        children: list[Child] = []

        def start(name: str, argv: list[str]) -> None:
            children.append(Child(name, subprocess.Popen(argv, cwd=base, env=env)))  # noqa: S603

        try:
            if local_gateways:
                webhook = f"http://127.0.0.1:{port}/webhooks/stripe/"
                nmi_webhook = f"http://127.0.0.1:{port}/webhooks/nmi/"
                start("stripe", [python, "-m", "integrations.fakes.stripe",
                                 "--port", str(LOCAL_STRIPE_PORT),
                                 "--api-key", env["STRIPE_SECRET_KEY"],
                                 "--publishable-key", env["STRIPE_PUBLISHABLE_KEY"],
                                 "--webhook-url", webhook,
                                 "--webhook-secret", env["STRIPE_WEBHOOK_SECRET"]])  # fmt: skip
                # The signing and tokenization keys reach the fake through the environment.
                start("nmi", [python, "-m", "integrations.fakes.nmi",
                              "--port", str(LOCAL_NMI_PORT),
                              "--security-key", env["NMI_SECURITY_KEY"],
                              "--webhook-url", nmi_webhook])  # fmt: skip
                _wait_for_ports([LOCAL_STRIPE_PORT, LOCAL_NMI_PORT])
            if local_integrations:
                # Keys and webhook secrets reach the fakes through the environment.
                hooks = f"http://127.0.0.1:{port}/webhooks"
                start("beluga", [python, "-m", "integrations.fakes.beluga",
                                 "--port", str(LOCAL_BELUGA_PORT),
                                 "--webhook-url", f"{hooks}/beluga/"])  # fmt: skip
                start("dispensepro", [python, "-m", "integrations.fakes.dispensepro",
                                      "--port", str(LOCAL_DISPENSEPRO_PORT),
                                      "--webhook-url", f"{hooks}/dispensepro/"])  # fmt: skip
                _wait_for_ports([LOCAL_BELUGA_PORT, LOCAL_DISPENSEPRO_PORT])
            manage = [python, "manage.py"]
            subprocess.run([*manage, "migrate", "--noinput"], cwd=base, env=env, check=True)  # noqa: S603
            # The web app first, so the gateway servers' webhooks about demo payments arrive.
            start("web", [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"])
            _wait_for_ports([port])
            subprocess.run([*manage, "seed_demo"], cwd=base, env=env, check=True)  # noqa: S603
            start("worker", [python, "-m", "celery", "-A", "emr", "worker", "--loglevel=INFO",
                             "--concurrency=2"])  # fmt: skip
            start("beat", [python, "-m", "celery", "-A", "emr", "beat", "--loglevel=INFO",
                           "--schedule", str(base / "var" / "celerybeat-schedule")])  # fmt: skip
            _wait_for_ports([port])
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nEMR billing is running: http://127.0.0.1:{port}/admin/ "
                    f"(API docs, once signed in: http://127.0.0.1:{port}/api/v1/docs/; patient "
                    f"portal: http://127.0.0.1:{port}/patient/). Ctrl-C stops everything."
                )
            )
            self._wait(children)
        except subprocess.CalledProcessError as error:
            raise CommandError(
                f"{' '.join(error.cmd[2:])} failed; see the output above."
            ) from error
        finally:
            _stop(children)

    def _wait(self, children: list[Child]) -> None:
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
        try:
            while True:
                for child in children:
                    if child.process.poll() is not None:
                        raise CommandError(
                            f"{child.name} stopped (exit {child.process.returncode})."
                        )
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")


def _stop_on_sigterm(signum, frame):
    # `kill` (as from a process manager) stops the stack the same way Ctrl-C does.
    raise KeyboardInterrupt


def _wait_for_ports(ports: list[int], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    for port in ports:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise CommandError(f"Nothing is listening on port {port}.") from None
                time.sleep(0.1)


def _stop(children: list[Child]) -> None:
    for child in reversed(children):
        if child.process.poll() is None:
            child.process.terminate()
    for child in children:
        try:
            child.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.process.kill()
