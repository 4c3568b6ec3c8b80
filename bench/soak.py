"""A soak across processes: the guarantees the tests prove with threads, held by a real stack.

Two gunicorn web processes (separate invocations, on two loopback ports), two Celery worker
processes and Celery beat started twice (bench/soak_beat.py: the production schedule, every entry
every few seconds), against PostgreSQL, Redis and the fake NMI and Stripe servers
(integrations/fakes/) with random faults switched on at the fakes (`POST /_fake/chaos`):
dropped answers (applied, connection cut), slow answers (applied, answered after the client's
timeout) and refusals (the gateway's "try again", nothing applied).

Client threads drive a bounded mix through the REST API (shared/API.md) as a CS user and a
billing admin: charges, full and partial refunds (some racing on one order from both web
processes at once), order cancellations, subscriptions started, cancelled and scheduled to be
cancelled, renewals (next_billing_at forced into the past; beat's renewal sweep bills them),
recovery payments of renewals that failed, and workflow runs (webhook steps to a local receiver
that counts deliveries by event). Half-way the billing admin switches the active gateway from
Stripe to NMI. One worker is SIGKILLed (its whole process) part-way and a replacement started.

Then the faults stop, the janitors run (`reconcile_charges`, `reconcile_refunds`, the outbox
sweep, and beat) until nothing is left in flight, and the invariants are checked and printed,
each with its count. A broken invariant exits non-zero.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/emr_billing \\
    REDIS_URL=redis://127.0.0.1:6379/0 python bench/soak.py [--operations 2000] [--seconds 300]

It creates (and drops) the database `<DATABASE_URL's name>_soak` and uses Redis database
WORKER_REDIS_DB (default 5) of REDIS_URL, flushed at start. tests/test_soak.py runs the same
core with small numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emr.settings")

import requests  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
CELERY = str(ROOT / ".venv" / "bin" / "celery")

# Short clocks: a lost answer is looked for after a few seconds, not minutes. The reconcile
# threshold stays above the gateway timeout, as in production, so a call still in flight is
# never declared missing.
GATEWAY_TIMEOUT_SECONDS = 2
SLOW_ANSWER_SECONDS = 3
RECONCILE_AFTER_SECONDS = 4
STRIPE_KEY, STRIPE_WEBHOOK_SECRET = "sk_test_soak", "whsec_soak"
REPLACEMENT_STARTUP_SECONDS = 180
METRICS_TOKEN = "soak-metrics-token"  # noqa: S105 (the soak's own throwaway stack)
NMI_KEY, NMI_WEBHOOK_KEY = "soak-nmi-key", "soak-nmi-webhook-key"
PRICE_CENTS = 12_000
PLAN_PRICE_CENTS = 4_900
# Workflows that send each event of their trigger to the receiver.
WORKFLOW_TRIGGERS = ("order.refunded", "invoice.paid", "subscription.cancelled")


@dataclass(frozen=True)
class SoakConfig:
    operations: int = 2000  # API operations the clients make, at most
    seconds: float = 300  # and for at most this long
    clients: int = 12
    web_workers: int = 2  # gunicorn workers per web process (each with 4 threads)
    kill_after: float = 0.4  # SIGKILL a worker once this share of the operations is done
    switch_gateway_after: float = 0.5  # Stripe -> NMI
    faults: dict = field(
        default_factory=lambda: {"drop": 0.05, "slow": 0.04, "refuse": 0.05, "seed": 7}
    )
    drain_seconds: float = 120  # for the janitors to resolve what the faults left
    beat_seconds: float = 3
    seed: int = 18


SHORT = SoakConfig(
    operations=150, seconds=25, clients=4, web_workers=1, kill_after=0.3, drain_seconds=50
)


# --- Running the stack ------------------------------------------------------------------------


@dataclass
class Stack:
    web: list[str]  # base URLs of the two web processes
    stripe: str
    nmi: str
    receiver: object
    workers: list
    work_dir: Path
    env: dict[str, str]
    beats: list[subprocess.Popen] = field(default_factory=list)
    kills: int = 0
    replacements: int = 0

    def kill_worker(self, index: int = 0) -> None:
        """SIGKILL a worker (solo pool: the process that runs the task), mid-task, acknowledging
        nothing; then a replacement is started, so the soak ends with two workers again."""
        worker = self.workers[index]
        worker.kill()
        self.kills += 1
        # Under the soak's load a worker takes longer to boot than the suite's 30 s allow.
        worker.start(startup_timeout=REPLACEMENT_STARTUP_SECONDS)
        self.replacements += 1


def stack_env(*, database_url: str, broker_url: str, stripe: str, nmi: str, work_dir: Path):
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "emr.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": broker_url,
        "LOG_LEVEL": "WARNING",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(work_dir / "mail"),
        # Every web and worker process counts into one directory; /metrics adds them up.
        "PROMETHEUS_MULTIPROC_DIR": str(work_dir / "metrics"),
        "METRICS_TOKEN": METRICS_TOKEN,
        **gateway_settings(stripe=stripe, nmi=nmi, as_env=True),
    }


def gateway_settings(*, stripe: str, nmi: str, as_env: bool = False) -> dict:
    values = {
        "STRIPE_SECRET_KEY": STRIPE_KEY,
        "STRIPE_API_BASE": stripe,
        "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
        "NMI_SECURITY_KEY": NMI_KEY,
        "NMI_API_URL": f"{nmi}/api/transact.php",
        "NMI_QUERY_URL": f"{nmi}/api/query.php",
        "NMI_WEBHOOK_SIGNING_KEY": NMI_WEBHOOK_KEY,
        "GATEWAY_TIMEOUT_SECONDS": GATEWAY_TIMEOUT_SECONDS,
        "REFUND_RECONCILE_AFTER_SECONDS": RECONCILE_AFTER_SECONDS,
        "CHARGE_RECONCILE_AFTER_SECONDS": RECONCILE_AFTER_SECONDS,
        "PENDING_REFUND_CHECK_AFTER_SECONDS": RECONCILE_AFTER_SECONDS,
        "WORKFLOW_WEBHOOK_ALLOW_PRIVATE_HOSTS": True,  # the receiver listens on loopback
        "WORKFLOW_WEBHOOK_REQUIRE_HTTPS": False,
        "WORKFLOW_RUN_LEASE_SECONDS": 8,
        "WORKFLOW_RETRY_DELAYS": [1, 2, 4, 8],
        "API_THROTTLE_PER_TOKEN": "1000000/minute",
        "API_THROTTLE_PER_ADDRESS": "1000000/minute",
    }
    if not as_env:
        return values
    as_text = {True: "true", False: "false"}
    return {
        name: as_text[value]
        if isinstance(value, bool)
        else ",".join(map(str, value))
        if isinstance(value, list)
        else str(value)
        for name, value in values.items()
    }


@contextlib.contextmanager
def running_stack(config: SoakConfig, work_dir: Path) -> Iterator[Stack]:
    """Every process of the soak, started; all stopped on exit."""
    from django.conf import settings

    from tests.emr.workflows.receiver import WebhookReceiver
    from tests.fixtures.celery_worker import (
        CeleryWorker,
        _database_url,
        _flush,
        _with_db,
        publishing_to,
    )
    from tests.fixtures.servers import free_port, run_server

    broker_url = _with_db(os.environ["REDIS_URL"], int(os.environ.get("WORKER_REDIS_DB", "5")))
    _flush(broker_url)
    (work_dir / "mail").mkdir(exist_ok=True)
    (work_dir / "metrics").mkdir(exist_ok=True)
    ports = {name: free_port() for name in ("stripe", "nmi", "web1", "web2")}
    stripe, nmi = (f"http://127.0.0.1:{ports[name]}" for name in ("stripe", "nmi"))
    web = [f"http://127.0.0.1:{ports[name]}" for name in ("web1", "web2")]
    env = stack_env(
        database_url=_database_url(settings.DATABASES["default"]),
        broker_url=broker_url,
        stripe=stripe,
        nmi=nmi,
        work_dir=work_dir,
    )
    with contextlib.ExitStack() as stack:
        receiver = WebhookReceiver()
        stack.callback(receiver.close)
        # The fakes send their webhooks to both web processes: Stripe's to one, NMI's to the other.
        fakes = [
            ([PYTHON, "-m", "integrations.fakes.stripe", "--port", str(ports["stripe"]),
              "--webhook-url", f"{web[0]}/webhooks/stripe/"], ports["stripe"]),
            ([PYTHON, "-m", "integrations.fakes.nmi", "--port", str(ports["nmi"]),
              "--dup-seconds", "0", "--webhook-url", f"{web[1]}/webhooks/nmi/"], ports["nmi"]),
        ]  # fmt: skip
        for (argv, port), name in zip(fakes, ("stripe", "nmi"), strict=True):
            stack.enter_context(run_server(argv, port, env=env, log=work_dir / f"{name}.log"))
        for name in ("web1", "web2"):
            argv = [GUNICORN, "emr.wsgi", "--bind", f"127.0.0.1:{ports[name]}",
                    "--workers", str(config.web_workers), "--threads", "4", "--timeout", "60",
                    "--access-logfile", "-", "--error-logfile", "-"]  # fmt: skip
            stack.enter_context(
                run_server(
                    argv, ports[name], env=env, startup_timeout=30, log=work_dir / f"{name}.log"
                )
            )
        workers = []
        for number in (1, 2):
            log_dir = work_dir / f"worker{number}"
            log_dir.mkdir(exist_ok=True)
            worker = CeleryWorker(
                env=env,
                queues="celery",
                log_dir=log_dir,
                mail_dir=work_dir / "mail",
                broker_url=broker_url,
                extra_args=(f"--hostname=soak{number}-{uuid.uuid4().hex[:6]}@%h",),
            )
            stack.callback(worker.stop)
            workers.append(worker)
        starting = [threading.Thread(target=worker.start) for worker in workers]
        for thread in starting:  # each waits for its worker's "ready": both at once
            thread.start()
        for thread in starting:
            thread.join()
        if not all(worker.process and worker.process.poll() is None for worker in workers):
            raise RuntimeError("a Celery worker did not start; see its log in " + str(work_dir))
        soak = Stack(web, stripe, nmi, receiver, workers, work_dir, env)
        beat_env = {**env, "SOAK_BEAT_SECONDS": str(config.beat_seconds)}
        for number in (1, 2):  # two beats: every sweep must be harmless when run twice
            log = (work_dir / f"beat{number}.log").open("wb")
            beat = subprocess.Popen(
                [CELERY, "-A", "bench.soak_beat", "beat", "--loglevel=INFO",
                 "--schedule", str(work_dir / f"beat{number}-schedule")],
                cwd=ROOT, env=beat_env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            soak.beats.append(beat)
            stack.callback(_terminate, beat)
        stack.enter_context(publishing_to(broker_url))  # the janitors run here enqueue there
        yield soak


def _terminate(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


# --- The API clients -------------------------------------------------------------------------


class Api:
    """The REST API as one role, on either web process; every answer is counted."""

    def __init__(self, stack: Stack, token: str, tally: Tally):
        self.stack, self.token, self.tally = stack, token, tally
        self._local = threading.local()

    def call(self, kind: str, method: str, path: str, body=None, *, web: int | None = None):
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["Authorization"] = f"Token {self.token}"
        base = self.stack.web[random.randrange(2) if web is None else web]
        # A fresh connection each time: a kept-alive one the server closes as it is reused
        # would lose a request before the app saw it, which is the client's race, not ours.
        headers = {"Connection": "close"}
        try:
            response = session.request(
                method, f"{base}/api/v1/{path}", json=body, headers=headers, timeout=60
            )
        except requests.RequestException as error:
            self.tally.answer(kind, f"no answer ({type(error).__name__})")
            return None, {}
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        status = response.status_code
        code = answer.get("code") if isinstance(answer, dict) and status >= 400 else None
        self.tally.answer(kind, f"{status} {code}" if code else status)
        return status, answer


class Tally:
    def __init__(self):
        self._lock = threading.Lock()
        self.answers: dict[str, Counter] = defaultdict(Counter)
        self.operations = 0

    def answer(self, kind: str, status) -> None:
        with self._lock:
            self.answers[kind][status] += 1
            self.operations += 1


@dataclass
class Roles:
    cs: Api
    admin: Api


class Client:
    """One client thread's scenarios, drawn from its own seeded generator."""

    def __init__(self, roles: Roles, ids: dict, rng: random.Random, shared: Shared):
        self.cs, self.admin, self.ids, self.rng, self.shared = (
            roles.cs,
            roles.admin,
            ids,
            rng,
            shared,
        )
        self._patients: dict[str, tuple[int, int]] = {}  # gateway -> (patient id, card id)

    def run_one(self) -> None:
        scenarios = [
            (self.full_refund, 3),
            (self.partial_refunds, 2),
            (self.racing_refunds, 3),
            (self.cancel_paid, 1),
            (self.cancel_unpaid, 1),
            (self.subscription, 3),
            (self.recovery_payment, 2),
        ]
        choice = self.rng.choices([s for s, _ in scenarios], [w for _, w in scenarios])[0]
        choice()

    # patients and cards

    def patient(self, *, fresh: bool = False) -> tuple[int, int] | None:
        gateway = self.shared.gateway
        if fresh or gateway not in self._patients or self.rng.random() < 0.2:
            code, patient = self.cs.call(
                "patient.create",
                "POST",
                "patients/",
                {"first_name": "Soak", "last_name": "Patient",
                 "email": f"{uuid.uuid4().hex[:12]}@soak.example"},
            )  # fmt: skip
            if code != 201:
                return None
            token = "pm_card_visa" if gateway == "stripe" else "nmi_tok_visa"
            code, card = self.cs.call(
                "card.save",
                "POST",
                f"patients/{patient['id']}/payment-methods/",
                {"gateway": gateway, "token": token},
            )
            if code != 201:
                return None
            self._patients[gateway] = (patient["id"], card["id"])
        return self._patients[gateway]

    def paid_order(self) -> dict | None:
        order = self.unpaid_order()
        if order is None:
            return None
        code, _ = self.cs.call(
            "charge", "POST", f"invoices/{order['invoice']['id']}/pay/",
            {"payment_method": order["_card"]},
        )  # fmt: skip
        return order if code == 201 else None

    def unpaid_order(self) -> dict | None:
        who = self.patient()
        if who is None:
            return None
        patient, card = who
        code, order = self.cs.call(
            "order.create", "POST", "orders/",
            {"patient": patient, "items": [{"product": self.ids["product"], "quantity": 1}]},
        )  # fmt: skip
        if code != 201:
            return None
        return {**order, "_card": card}

    # scenarios

    def full_refund(self) -> None:
        if order := self.paid_order():
            self.refund(order, "refund.full")

    def partial_refunds(self) -> None:
        if order := self.paid_order():
            for _ in range(self.rng.randint(2, 3)):
                amount = self.rng.choice([1500, 2500, 4000, 6000])
                self.refund(order, "refund.partial", amount)

    def racing_refunds(self) -> None:
        """Two refunds of one order at the same moment, one through each web process."""
        order = self.paid_order()
        if order is None:
            return
        full = self.rng.random() < 0.5
        amounts = [None, None] if full else [7000, 8000]  # two partials that cannot both fit
        start = threading.Barrier(2)

        def one(web: int) -> None:
            start.wait()
            self.refund(order, "refund.race", amounts[web], web=web)

        threads = [threading.Thread(target=one, args=(web,)) for web in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def refund(self, order: dict, kind: str, amount: int | None = None, *, web=None) -> None:
        body = {"reason": "Soak refund"}
        if amount is not None:
            body["amount_cents"] = amount
        self.cs.call(kind, "POST", f"orders/{order['id']}/refund/", body, web=web)

    def cancel_paid(self) -> None:
        if order := self.paid_order():
            self.cancel(order)

    def cancel_unpaid(self) -> None:
        if order := self.unpaid_order():
            self.cancel(order)

    def cancel(self, order: dict) -> None:
        self.cs.call(
            "order.cancel", "POST", f"orders/{order['id']}/transition/",
            {"status": "CANCELLED", "reason": "Soak cancellation"},
        )  # fmt: skip

    def subscription(self) -> None:
        who = self.patient(fresh=True)
        if who is None:
            return
        patient, card = who
        plan = self.ids["financed_plan"] if self.rng.random() < 0.4 else self.ids["plan"]
        code, subscription = self.admin.call(
            "subscription.start", "POST", "subscriptions/",
            {"patient": patient, "plan": plan, "payment_method": card},
        )  # fmt: skip
        if code != 201:
            return
        path = f"subscriptions/{subscription['id']}/"
        what = self.rng.random()
        if what < 0.2:
            self.cs.call("subscription.cancel", "POST", f"{path}cancel/", {"reason": "Soak"})
            return
        if what < 0.45:
            self.cs.call(
                "subscription.schedule_cancellation", "POST", f"{path}schedule-cancellation/",
                {"reason": "Soak: after the last payment"},
            )  # fmt: skip
        self.shared.renewable.append(subscription["id"])
        self.force_renewal()

    def force_renewal(self) -> None:
        """Move a subscription's billing date into the past: beat's renewal sweep bills it."""
        from django.utils import timezone

        from subscriptions.models import Subscription

        if not self.shared.renewable:
            return
        chosen = self.rng.choice(self.shared.renewable)
        moved = Subscription.objects.filter(pk=chosen, status="ACTIVE").update(
            next_billing_at=timezone.now() - timedelta(seconds=1)
        )
        self.shared.tally.answer("renewal.forced", "moved" if moved else "not active")

    def recovery_payment(self) -> None:
        """Pay an open renewal invoice (a renewal whose charge failed) with a new card."""
        from orders.models import Order

        # In recovery (its renewal charge failed or found no card), not merely SENT: a renewal
        # invoice is SENT until beat charges it, and paying it first would race beat.
        open_renewal = (
            Order.objects.filter(
                subscription__isnull=False,
                invoice__status="SENT",
                recovery_status__in=["CHARGE_FAILED", "NEEDS_PAYMENT_METHOD"],
            )
            .exclude(invoice__payments__status="PENDING")
            .order_by("?")
            .values("invoice__id", "patient_id")
            .first()
        )
        if open_renewal is None:
            self.force_renewal()
            return
        gateway = self.shared.gateway
        token = "pm_card_visa" if gateway == "stripe" else "nmi_tok_visa"
        code, card = self.cs.call(
            "card.save", "POST", f"patients/{open_renewal['patient_id']}/payment-methods/",
            {"gateway": gateway, "token": token},
        )  # fmt: skip
        if code != 201:
            return
        self.cs.call(
            "recovery.payment", "POST", f"invoices/{open_renewal['invoice__id']}/pay/",
            {"payment_method": card["id"]},
        )  # fmt: skip


@dataclass
class Shared:
    tally: Tally
    gateway: str = "stripe"
    renewable: list[int] = field(default_factory=list)


# --- Setting up and driving the mix ---------------------------------------------------------


def set_up(stack: Stack, tally: Tally) -> tuple[Roles, dict, list]:
    """Staff with tokens, a product, two plans and the listening workflows (through the API)."""
    from django.contrib.auth.models import Group, Permission, User
    from rest_framework.authtoken.models import Token

    from emr.staff_groups import BILLING_ADMIN, CS, apply_group_permissions

    apply_group_permissions(Group, Permission)  # a flushed test database has none
    tokens = {}
    for name, group in (("soak-cs", CS), ("soak-billing", BILLING_ADMIN)):
        user = User.objects.create_user(name, is_staff=True)
        user.groups.add(Group.objects.get(name=group))
        tokens[group] = Token.objects.create(user=user).key
    roles = Roles(cs=Api(stack, tokens[CS], tally), admin=Api(stack, tokens[BILLING_ADMIN], tally))
    _, product = roles.admin.call(
        "setup", "POST", "products/",
        {"name": "Soak consult", "kind": "SERVICE", "price_cents": PRICE_CENTS},
    )  # fmt: skip
    _, membership = roles.admin.call(
        "setup", "POST", "products/",
        {"name": "Soak membership", "kind": "MEMBERSHIP", "price_cents": PLAN_PRICE_CENTS},
    )  # fmt: skip
    ids = {"product": product["id"]}
    for key, extra in (("plan", {}), ("financed_plan", {"financed_cycles": 3})):
        _, plan = roles.admin.call(
            "setup", "POST", "plans/",
            {"name": f"Soak {key}", "product": membership["id"], "price_cents": PLAN_PRICE_CENTS,
             "interval": "MONTH", "interval_count": 1, **extra},
        )  # fmt: skip
        ids[key] = plan["id"]
    workflows = []
    for trigger in WORKFLOW_TRIGGERS:
        code, workflow = roles.admin.call(
            "setup", "POST", "workflows/",
            {"name": f"Soak {trigger}", "trigger": trigger,
             "steps": [{"kind": "webhook", "config": {"url": stack.receiver.url}}]},
        )  # fmt: skip
        assert code == 201, workflow
        workflows.append(workflow["id"])
    code, answer = roles.admin.call(
        "setup", "PUT", "settings/active-gateway/", {"gateway": "stripe", "reason": "Soak"}
    )
    assert code == 200, answer
    return roles, ids, workflows


def set_faults(stack: Stack, spec: dict) -> None:
    on = {stack.stripe: ["charge", "refund"], stack.nmi: ["sale", "refund"]}
    for base, kinds in on.items():
        body = {**spec, "slow_seconds": SLOW_ANSWER_SECONDS, "on": kinds} if spec else {}
        requests.post(f"{base}/_fake/chaos", json=body, timeout=5).raise_for_status()


def drive(stack: Stack, config: SoakConfig, roles: Roles, ids: dict, tally: Tally) -> Shared:
    shared = Shared(tally=tally)
    deadline = time.monotonic() + config.seconds
    events = {"killed": False, "switched": False}
    lock = threading.Lock()
    killer = threading.Thread(target=stack.kill_worker)

    def milestones() -> None:
        with lock:
            done = max(
                tally.operations / config.operations,
                1 - (deadline - time.monotonic()) / config.seconds,
            )
            if not events["killed"] and done >= config.kill_after:
                events["killed"] = True
                killer.start()  # the replacement's start-up holds no client back
            if not events["switched"] and done >= config.switch_gateway_after:
                events["switched"] = True
                roles.admin.call(
                    "gateway.switch", "PUT", "settings/active-gateway/",
                    {"gateway": "nmi", "reason": "Soak: the clinic moves to NMI"},
                )  # fmt: skip
                shared.gateway = "nmi"

    def client(number: int) -> None:
        import django.db

        worker = Client(roles, ids, random.Random(config.seed * 100 + number), shared)
        try:
            while tally.operations < config.operations and time.monotonic() < deadline:
                worker.run_one()
                milestones()
        finally:
            django.db.connections.close_all()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(config.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if not events["killed"]:
        killer.start()
    killer.join()
    return shared


def drain(stack: Stack, config: SoakConfig) -> dict[str, int]:
    """Faults off; run the janitors (and let beat run) until nothing is in flight."""
    from django.core.management import call_command

    from emr.workflows.dispatch import dispatch_pending

    set_faults(stack, {})
    # The deadline moves on while the backlog shrinks: on a starved machine the two workers may
    # need longer to work off the queue, and a slow drain is not a lost task. It stops at three
    # times drain_seconds, or at drain_seconds without progress.
    started = time.monotonic()
    deadline = started + config.drain_seconds
    left: dict[str, int] = {}
    quiet_rounds, smallest = 0, None
    while time.monotonic() < deadline:
        time.sleep(2)
        with open(os.devnull, "w") as quiet:
            for command in ("reconcile_charges", "reconcile_refunds"):
                call_command(
                    command, older_than_seconds=RECONCILE_AFTER_SECONDS, stdout=quiet, stderr=quiet
                )
        dispatch_pending(older_than=timedelta(seconds=2))
        left = in_flight(stack)
        backlog = sum(left.values())
        if smallest is None or backlog < smallest:
            smallest = backlog
            deadline = min(
                time.monotonic() + config.drain_seconds, started + 3 * config.drain_seconds
            )
        quiet_rounds = quiet_rounds + 1 if not backlog else 0
        if quiet_rounds >= 2:  # nothing left twice in a row: the janitors are done
            break
    return left


def in_flight(stack: Stack) -> dict[str, int]:
    import redis
    from django.utils import timezone

    from billing.models import Payment, RefundAttempt
    from emr.workflows.models import DispatchStatus, RunStatus, WorkflowEvent, WorkflowRun
    from subscriptions.models import Subscription

    backlog = sum(
        requests.get(f"{base}/_fake/webhooks", timeout=5).json().get("undelivered", 0)
        for base in (stack.stripe, stack.nmi)
    )
    broker = redis.Redis.from_url(stack.env["REDIS_URL"])
    try:
        queued = broker.llen("celery")
    finally:
        broker.close()
    return {
        "pending refund attempts": RefundAttempt.objects.filter(status="PENDING").count(),
        "pending payments": Payment.objects.filter(status="PENDING", needs_review=False).count(),
        "undispatched events": WorkflowEvent.objects.filter(
            dispatch_status=DispatchStatus.PENDING
        ).count(),
        "unfinished workflow runs": WorkflowRun.objects.exclude(
            status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.STOPPED]
        ).count(),
        "renewals due": Subscription.objects.filter(
            status="ACTIVE", next_billing_at__lte=timezone.now()
        ).count(),
        "queued tasks": queued,
        "gateway webhooks undelivered": backlog,
    }


# --- The metrics ------------------------------------------------------------------------------

# The counters the processes keep (emr/kernel/metrics.py). Every web and worker process writes
# into one multiprocess directory, so one web process's /metrics answers for all of them.
COUNTERS = {
    "emr_http_requests": "requests answered",
    "emr_gateway_calls": "gateway calls",
    "emr_celery_tasks": "Celery tasks run",
    "emr_webhooks": "webhooks received",
    "emr_renewal_results": "renewals and retries",
}
# Those that must have moved in any soak, however short.
MUST_MOVE = ("emr_http_requests", "emr_gateway_calls", "emr_celery_tasks", "emr_webhooks")


def scrape_counters(stack: Stack) -> Counter:
    from prometheus_client.parser import text_string_to_metric_families

    response = requests.get(
        f"{stack.web[1]}/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}", "Connection": "close"},
        timeout=30,
    )
    response.raise_for_status()
    totals: Counter = Counter()
    for family in text_string_to_metric_families(response.text):
        if family.name in COUNTERS:
            totals[family.name] += sum(
                sample.value for sample in family.samples if sample.name.endswith("_total")
            )
    return totals


# --- The invariants ---------------------------------------------------------------------------


@dataclass
class Invariant:
    name: str
    count: int
    problems: list[str]

    @property
    def holds(self) -> bool:
        return not self.problems


def check_invariants(
    stack: Stack, workflows: list[int], tally: Tally, scrapes: list[Counter]
) -> list[Invariant]:
    stripe = requests.get(f"{stack.stripe}/_fake/ledger", timeout=10).json()
    nmi = requests.get(f"{stack.nmi}/_fake/transactions", timeout=10).json()
    return [
        _charges_once(stripe, nmi),
        _refunds_once(stripe, nmi),
        _no_refund_exceeds_its_charge(stripe, nmi),
        _nothing_pending(),
        _events_delivered_once(stack.receiver, workflows),
        _status_changes_have_history(),
        _no_server_errors(tally),
        _metrics_moved(scrapes, tally),
        _workers_replaced(stack),
    ]


def _gateway_charges(stripe: dict, nmi: list) -> dict[str, dict]:
    """transaction id -> {amount, reference} of every charge that took money, at either gateway."""
    charges = {
        c["id"]: {"amount": c["amount"], "reference": c["reference"]} for c in stripe["charges"]
    }
    for t in nmi:
        if t["type"] == "sale" and t["success"]:
            charges[t["transaction_id"]] = {"amount": t["amount_cents"], "reference": t["orderid"]}
    return charges


def _gateway_refunds(stripe: dict, nmi: list) -> dict[str, dict]:
    """transaction id -> {amount, charge, reference} of every refund (or void) holding money
    back."""
    refunds = {
        r["id"]: {"amount": r["amount"], "charge": r["payment_intent"], "reference": r["reference"]}
        for r in stripe["refunds"]
        if r["status"] in ("pending", "succeeded")
    }
    for t in nmi:
        if t["type"] == "refund" and t["success"]:
            refunds[t["transaction_id"]] = {
                "amount": t["amount_cents"],
                "charge": t["parent_transaction_id"],
                "reference": t["orderid"],
            }
        elif t["type"] == "void":
            # A whole unsettled sale is voided, not refunded: the refund is named by the sale.
            refunds[t["transaction_id"]] = {
                "amount": t["amount_cents"],
                "charge": t["transaction_id"],
                "reference": None,
            }
    return refunds


def _charges_once(stripe: dict, nmi: list) -> Invariant:
    from billing.models import Payment

    at_gateway = _gateway_charges(stripe, nmi)
    recorded = list(
        Payment.objects.filter(kind="CHARGE", status="SUCCEEDED").values_list(
            "transaction_id", "amount_cents", "reference"
        )
    )
    problems = _compare(at_gateway, recorded, what="charge")
    references = Counter(charge["reference"] for charge in at_gateway.values())
    problems += [f"reference {ref} charged {n} times" for ref, n in references.items() if n > 1]
    return Invariant("each charge moved money at the gateway exactly once", len(recorded), problems)


def _refunds_once(stripe: dict, nmi: list) -> Invariant:
    from billing.models import Payment

    at_gateway = _gateway_refunds(stripe, nmi)
    recorded = list(
        Payment.objects.filter(kind="REFUND", status__in=["REFUNDED", "PENDING"]).values_list(
            "transaction_id", "amount_cents", "refund_attempt__reference"
        )
    )
    problems = _compare(at_gateway, recorded, what="refund")
    references = Counter(r["reference"] for r in at_gateway.values() if r["reference"])
    problems += [f"reference {ref} refunded {n} times" for ref, n in references.items() if n > 1]
    return Invariant("each refund moved money at the gateway exactly once", len(recorded), problems)


def _compare(at_gateway: dict[str, dict], recorded: list[tuple], *, what: str) -> list[str]:
    problems = []
    ids = Counter(transaction_id for transaction_id, _, _ in recorded)
    problems += [f"{what} {t} recorded {n} times" for t, n in ids.items() if n > 1]
    for transaction_id, amount, _reference in recorded:
        found = at_gateway.get(transaction_id)
        if found is None:
            problems.append(f"{what} {transaction_id} recorded but not at the gateway")
        elif found["amount"] != amount:
            problems.append(f"{what} {transaction_id}: {amount} recorded, {found['amount']} moved")
    problems += [
        f"{what} {t} ({g['amount']} cents, reference {g['reference']}) moved money, not recorded"
        for t, g in at_gateway.items()
        if t not in ids
    ]
    return problems


def _no_refund_exceeds_its_charge(stripe: dict, nmi: list) -> Invariant:
    from django.db.models import F, Q, Sum

    from billing.models import Payment
    from orders.models import Order

    problems = []
    charges = Payment.objects.filter(kind="CHARGE", status="SUCCEEDED").annotate(
        refunded=Sum("refunds__amount_cents", filter=Q(refunds__status__in=["REFUNDED", "PENDING"]))
    )
    checked = 0
    for charge in charges:
        if charge.refunded:
            checked += 1
            if charge.refunded > charge.amount_cents:
                problems.append(
                    f"charge {charge.pk}: {charge.refunded} refunded of {charge.amount_cents}"
                )
    at_gateway = _gateway_charges(stripe, nmi)
    returned = Counter()
    for refund in _gateway_refunds(stripe, nmi).values():
        returned[refund["charge"]] += refund["amount"]
    problems += [
        f"gateway charge {t}: {n} refunded of {at_gateway.get(t, {}).get('amount')}"
        for t, n in returned.items()
        if n > at_gateway.get(t, {}).get("amount", 0)
    ]
    over = Order.objects.filter(refunded_cents__gt=F("total_cents"))
    problems += [f"order {o.number}: refunded {o.refunded_cents} of {o.total_cents}" for o in over]
    return Invariant("no refund exceeds its charge", checked, problems)


def _nothing_pending() -> Invariant:
    from billing.models import Payment, RefundAttempt

    attempts = RefundAttempt.objects.count() + Payment.objects.filter(kind="CHARGE").count()
    problems = [
        f"refund attempt {pk} ({reference}) still PENDING"
        for pk, reference in RefundAttempt.objects.filter(status="PENDING").values_list(
            "pk", "reference"
        )
    ]
    problems += [
        f"{kind.lower()} payment {pk} ({reference}) still PENDING"
        + (f", flagged for review: {note}" if review else "")
        for pk, kind, reference, review, note in Payment.objects.filter(
            status="PENDING"
        ).values_list("pk", "kind", "reference", "needs_review", "review_note")
    ]
    return Invariant("no attempt left PENDING after the janitors ran", attempts, problems)


def _events_delivered_once(receiver, workflows: list[int]) -> Invariant:
    from emr.workflows.models import DispatchStatus, RunStatus, Workflow, WorkflowEvent, WorkflowRun

    delivered: dict[tuple[int, int], set[str]] = defaultdict(set)
    for request in list(receiver.requests):
        envelope = json.loads(request.body)
        delivered[envelope["workflow"]["id"], envelope["event"]["id"]].add(envelope["id"])
    applied = set(receiver.applied)
    problems, expected = [], 0
    for workflow in Workflow.objects.filter(pk__in=workflows):
        events = WorkflowEvent.objects.filter(event_type=workflow.trigger)
        for event_id, status in events.values_list("pk", "dispatch_status"):
            expected += 1
            if status != DispatchStatus.DISPATCHED:
                problems.append(f"event {event_id} ({workflow.trigger}) never dispatched")
                continue
            runs = list(
                WorkflowRun.objects.filter(workflow=workflow, event_id=event_id).values_list(
                    "pk", "status"
                )
            )
            keys = delivered.get((workflow.pk, event_id), set())
            if len(runs) != 1:
                problems.append(f"event {event_id}: {len(runs)} runs of workflow {workflow.pk}")
            elif runs[0][1] != RunStatus.SUCCEEDED:
                problems.append(f"event {event_id}: run {runs[0][0]} ended {runs[0][1]}")
            if len(keys) != 1 or not keys <= applied:
                problems.append(
                    f"event {event_id} to workflow {workflow.pk}: {len(keys)} distinct deliveries"
                )
        stray = {e for w, e in delivered if w == workflow.pk} - set(
            events.values_list("pk", flat=True)
        )
        problems += [f"delivery for unknown event {e}" for e in stray]
    return Invariant(
        "every emitted event delivered to every matching workflow once", expected, problems
    )


def _status_changes_have_history() -> Invariant:
    from django.apps import apps

    problems, changes = [], 0
    for model in apps.get_models():
        history = getattr(model, "history", None)
        fields = {f.name for f in model._meta.fields}
        if history is None or model._meta.proxy or "status" not in fields:
            continue
        last_status: dict[int, str] = {}
        rows = history.model.objects.order_by("id", "history_date", "history_id").values_list(
            "id", "status", "history_actor", "history_type"
        )
        for pk, status, actor, kind in rows:
            if kind == "-":
                continue
            if last_status.get(pk) != status:
                changes += 1
                if not actor or actor == "unknown":
                    problems.append(f"{model.__name__} {pk} became {status} with no actor")
            last_status[pk] = status
        for pk, status in model.objects.values_list("pk", "status"):
            if last_status.get(pk) != status:
                problems.append(
                    f"{model.__name__} {pk} is {status}, its history says {last_status.get(pk)}"
                )
    return Invariant("every status change has its history row with an actor", changes, problems)


def _no_server_errors(tally: Tally) -> Invariant:
    answers = sum(sum(counts.values()) for counts in tally.answers.values())
    problems = [
        f"{kind}: {n} answered {status}"
        for kind, counts in tally.answers.items()
        for status, n in counts.items()
        if str(status).startswith(("500", "no answer"))
    ]
    return Invariant(
        "every API answer is an answer (no 500, no dropped request)", answers, problems
    )


def _workers_replaced(stack: Stack) -> Invariant:
    running = sum(1 for w in stack.workers if w.process and w.process.poll() is None)
    problems = []
    if stack.replacements < stack.kills:
        problems.append(f"{stack.kills} workers SIGKILLed, {stack.replacements} replaced")
    if running < len(stack.workers):
        problems.append(f"{running} of {len(stack.workers)} workers running at the end")
    name = "a SIGKILLed worker is replaced; both workers run at the end"
    return Invariant(name, running, problems)


def _metrics_moved(scrapes: list[Counter], tally: Tally) -> Invariant:
    """/metrics, read before the load, after it and after the drain: each counter that any soak
    moves went up, none went down (a restarted worker's counts are kept), and every API answer
    the clients got was counted by the web process that gave it."""
    first, last = scrapes[0], scrapes[-1]
    problems = [
        f"{COUNTERS[name]} went from {earlier[name]:g} down to {later[name]:g}"
        for earlier, later in itertools.pairwise(scrapes)
        for name in COUNTERS
        if later[name] < earlier[name]
    ]
    problems += [
        f"{COUNTERS[name]} did not move" for name in MUST_MOVE if last[name] <= first[name]
    ]
    answered = sum(
        n
        for kind, counts in tally.answers.items()
        if kind != "setup"
        for status, n in counts.items()
        if not str(status).startswith("no answer")
    )
    counted = last["emr_http_requests"] - first["emr_http_requests"]
    if counted < answered:
        problems.append(f"{answered} API answers given, {counted:g} requests counted")
    return Invariant("the metrics counters moved with the work", int(counted), problems)


# --- The run ----------------------------------------------------------------------------------


@dataclass
class SoakReport:
    lines: list[str]
    invariants: list[Invariant]

    @property
    def broken(self) -> list[Invariant]:
        return [invariant for invariant in self.invariants if not invariant.holds]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def run_soak(
    config: SoakConfig, *, work_dir: Path, out: Callable[[str], None] = print
) -> SoakReport:
    """The soak against the current (migrated) database and REDIS_URL; returns its report."""
    from django.test import override_settings

    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        out(line)

    tally = Tally()
    started = time.monotonic()
    phases: dict[str, float] = {}
    # This process runs the janitors at the end, against the same gateways and clocks.
    with (
        running_stack(config, work_dir) as stack,
        override_settings(**gateway_settings(stripe=stack.stripe, nmi=stack.nmi)),
    ):
        phases["start-up"] = time.monotonic() - started
        roles, ids, workflows = set_up(stack, tally)
        set_faults(stack, config.faults)
        scrapes = [scrape_counters(stack)]
        say(
            f"soak: {config.operations} operations, {config.clients} clients, at most "
            f"{config.seconds:g} s; 2 web processes, 2 workers, 2 beats; "
            f"{os.cpu_count()} CPUs"
        )
        load_started = time.monotonic()
        drive(stack, config, roles, ids, tally)
        load_seconds = time.monotonic() - load_started
        scrapes.append(scrape_counters(stack))
        faults = {
            name: requests.get(f"{base}/_fake/chaos", timeout=5).json()["injected"]
            for name, base in (("stripe", stack.stripe), ("nmi", stack.nmi))
        }
        drain_started = time.monotonic()
        left = drain(stack, config)
        phases["load"], phases["drain"] = load_seconds, time.monotonic() - drain_started
        scrapes.append(scrape_counters(stack))
        invariants = check_invariants(stack, workflows, tally, scrapes)
        work = _work_by_the_stack(stack)
    answers = {k: v for k, v in tally.answers.items() if k != "setup"}
    done = sum(sum(c.values()) for c in answers.values())
    say(f"operations done: {done} in {load_seconds:.0f} s ({done / load_seconds:.1f}/s)")
    for kind in sorted(answers):
        counts = ", ".join(f"{status}: {n}" for status, n in sorted(answers[kind].items(), key=str))
        say(f"  {kind:<36} {sum(answers[kind].values()):>5}  ({counts})")
    say("done by workers and beat:")
    for kind, count in work.items():
        say(f"  {kind:<36} {count:>5}")
    say("faults injected:")
    by_kind: Counter = Counter()
    for gateway, injected in faults.items():
        for fault, kinds in injected.items():
            for request_kind, count in kinds.items():
                by_kind[f"{fault} ({gateway} {request_kind})"] += count
    for kind, count in sorted(by_kind.items()):
        say(f"  {kind:<36} {count:>5}")
    say(f"  {'worker SIGKILLed':<36} {stack.kills:>5}")
    say(f"  {'  replacement worker started':<36} {stack.replacements:>5}")
    say("metrics (/metrics of one web process; before load, after load, after drain):")
    for name, label in COUNTERS.items():
        readings = " -> ".join(f"{scrape[name]:g}" for scrape in scrapes)
        say(f"  {label:<36} {readings}")
    if any(left.values()):
        say(f"still in flight when the drain ended: {left}")
    say("invariants:")
    for invariant in invariants:
        state = "holds" if invariant.holds else f"BROKEN ({len(invariant.problems)})"
        say(f"  {invariant.name}: {state} ({invariant.count})")
        for problem in invariant.problems[:10]:
            say(f"      {problem}")
    timings = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in phases.items())
    say(f"total {time.monotonic() - started:.0f} s ({timings})")
    return SoakReport(lines, invariants)


def _work_by_the_stack(stack: Stack) -> dict[str, int]:
    from emr.workflows.models import RunStatus, WorkflowRun
    from subscriptions.models import Subscription, SubscriptionCycle

    return {
        "renewals billed (cycles after the first)": SubscriptionCycle.objects.filter(
            number__gt=1
        ).count(),
        "scheduled cancellations executed": Subscription.objects.filter(
            cancellation_cause="SCHEDULED"
        ).count(),
        "workflow runs succeeded": WorkflowRun.objects.filter(status=RunStatus.SUCCEEDED).count(),
        "webhook deliveries received": len(stack.receiver.requests),
        "  of which redelivered": len(stack.receiver.requests) - len(set(stack.receiver.applied)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=SoakConfig.operations)
    parser.add_argument("--seconds", type=float, default=SoakConfig.seconds)
    parser.add_argument("--clients", type=int, default=SoakConfig.clients)
    parser.add_argument("--short", action="store_true", help="the suite's numbers (SHORT)")
    parser.add_argument("--keep-database", action="store_true", help="and the logs: to debug")
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/emr_billing")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    database = settings.DATABASES["default"]
    old_name = database["NAME"]
    database.setdefault("TEST", {})["NAME"] = f"{old_name}_soak"
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    config = SHORT if args.short else SoakConfig(args.operations, args.seconds, args.clients)
    try:
        if args.keep_database:  # the logs too, to read after a failure
            work_dir = tempfile.mkdtemp(prefix="soak-")
            print(f"logs in {work_dir}")
            report = run_soak(config, work_dir=Path(work_dir))
        else:
            with tempfile.TemporaryDirectory() as work_dir:
                report = run_soak(config, work_dir=Path(work_dir))
    finally:
        if not args.keep_database:
            connection.creation.destroy_test_db(old_name, verbosity=0)
    sys.exit(1 if report.broken else 0)


if __name__ == "__main__":
    main()
