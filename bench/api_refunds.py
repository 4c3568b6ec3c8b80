"""Refunds per second through the REST API against bare adapter calls to the same gateway.

In one run, against the NMI fake (integrations/fakes/nmi.py, a real local HTTP server):
- bare: `gateway.refund` of the NMI adapter from this process, CLIENTS threads at once;
- API: `POST /api/v1/orders/{id}/refund/` as a CS user, CLIENTS threads at once, to gunicorn
  (WEB_WORKERS processes x WEB_THREADS threads: concurrency 8 by default), each request the
  whole door: token auth, permission, the preflight checklist recorded with the decision, the
  refund flow (lock, attempt committed, gateway call, recording, history, events).
Each side refunds its own freshly paid orders; the rounds alternate, and the median rate of
each side is compared. Prints refunds/s, bare calls/s and the ratio.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/emr_billing \\
    REDIS_URL=redis://127.0.0.1:6379/0 WORKER_REDIS_DB=5 python bench/api_refunds.py

It creates and drops the database `<DATABASE_URL's name>_api_refunds` and uses Redis database
WORKER_REDIS_DB of REDIS_URL for the events' broker messages (flushed before and after; no
worker runs, so they wait there). BENCH_REFUNDS (per round and side), BENCH_ROUNDS,
BENCH_CLIENTS, BENCH_WEB_WORKERS and BENCH_WEB_THREADS change the numbers.
"""

import contextlib
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emr.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/emr_billing")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

from bench.soak import GUNICORN, PYTHON, gateway_settings, stack_env  # noqa: E402
from tests.fixtures.celery_worker import _with_db  # noqa: E402

# This process's own commits publish to the same broker database as the web process's.
BROKER_URL = _with_db(os.environ["REDIS_URL"], int(os.environ.get("WORKER_REDIS_DB", "5")))
os.environ["REDIS_URL"] = BROKER_URL

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import override_settings  # noqa: E402

from tests.fixtures.celery_worker import _database_url, _flush  # noqa: E402
from tests.fixtures.servers import free_port, run_server  # noqa: E402

REFUNDS = int(os.environ.get("BENCH_REFUNDS", "60"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))
WEB_THREADS = int(os.environ.get("BENCH_WEB_THREADS", "4"))
PRICE_CENTS = 5000
NMI_TEST_CARD = "nmi_tok_visa"  # the fake's test token, never a card number


def cs_token() -> str:
    from django.contrib.auth.models import Group, Permission, User
    from rest_framework.authtoken.models import Token

    from emr.staff_groups import CS, apply_group_permissions

    apply_group_permissions(Group, Permission)  # a new test database has none
    user = User.objects.create_user(f"bench-cs-{uuid.uuid4().hex[:6]}", is_staff=True)
    user.groups.add(Group.objects.get(name=CS))
    return Token.objects.create(user=user).key


def paid_orders(count: int, product) -> list:
    """Orders paid at the NMI fake, each with its own patient (charged from this process)."""
    from billing import payments
    from emr.kernel.actors import Actor
    from emr.models import Patient
    from orders.services import OrderLine, create_order

    actor = Actor.system("bench")
    orders = []
    for index in range(count):
        patient = Patient.objects.create(
            first_name="Bench", last_name=str(index), email=f"{uuid.uuid4().hex}@bench.example"
        )
        order = create_order(patient=patient, lines=[OrderLine(product, 1)], actor=actor)
        payments.charge_invoice(
            invoice=order.invoice, one_off=payments.OneOffCard("nmi", NMI_TEST_CARD), actor=actor
        )
        orders.append(order)
    return orders


def rate(work: list, do) -> float:
    """Items done per second by CLIENTS threads sharing `work`."""
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(do, work))
    return len(work) / (time.perf_counter() - started)


def bare_rate(orders: list) -> float:
    from billing.models import Payment
    from billing.states import PaymentKind
    from integrations.gateways import registry

    adapter = registry.gateway_for("nmi")
    charges = [Payment.objects.get(invoice__order=o, kind=PaymentKind.CHARGE) for o in orders]

    def refund(charge) -> None:
        adapter.refund(
            transaction_id=charge.transaction_id,
            amount_cents=charge.amount_cents,
            currency=charge.currency,
            reference=uuid.uuid4().hex,
        )

    return rate(charges, refund)


def api_rate(web: str, token: str, orders: list) -> float:
    local = threading.local()
    failures = []

    def refund(order) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers["Authorization"] = f"Token {token}"
        response = session.post(
            f"{web}/api/v1/orders/{order.pk}/refund/", json={"reason": "Bench"}, timeout=60
        )
        if response.status_code != 201:
            failures.append((order.number, response.status_code, response.text[:200]))

    per_second = rate(orders, refund)
    if failures:
        raise RuntimeError(f"{len(failures)} API refunds failed, first: {failures[0]}")
    return per_second


def main() -> None:
    from orders.models import Product

    logging.getLogger("integrations").setLevel(logging.WARNING)  # a line per gateway call
    database = settings.DATABASES["default"]
    old_name = database["NAME"]
    database.setdefault("TEST", {})["NAME"] = f"{old_name}_api_refunds"
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    _flush(BROKER_URL)
    nmi_port, web_port = free_port(), free_port()
    nmi, web = f"http://127.0.0.1:{nmi_port}", f"http://127.0.0.1:{web_port}"
    unused_stripe = "http://127.0.0.1:9"  # the bench never calls Stripe
    try:
        with contextlib.ExitStack() as stack:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            (work_dir / "mail").mkdir()
            (work_dir / "metrics").mkdir()  # stack_env points the web process there
            env = stack_env(
                database_url=_database_url(database),
                broker_url=BROKER_URL,
                stripe=unused_stripe,
                nmi=nmi,
                work_dir=work_dir,
            )
            fake = [PYTHON, "-m", "integrations.fakes.nmi", "--port", str(nmi_port),
                    "--dup-seconds", "0"]  # fmt: skip
            stack.enter_context(run_server(fake, nmi_port, env=env, log=work_dir / "nmi.log"))
            server = [GUNICORN, "emr.wsgi", "--bind", f"127.0.0.1:{web_port}",
                      "--workers", str(WEB_WORKERS), "--threads", str(WEB_THREADS),
                      "--timeout", "60", "--error-logfile", "-"]  # fmt: skip
            stack.enter_context(
                run_server(server, web_port, env=env, startup_timeout=30, log=work_dir / "web.log")
            )
            stack.enter_context(
                override_settings(**gateway_settings(stripe=unused_stripe, nmi=nmi))
            )
            from billing import payments
            from emr.kernel.actors import Actor

            payments.set_active_gateway(gateway="nmi", actor=Actor.system("bench"), reason="Bench")
            product = Product.objects.create(
                name="Bench consult", kind="SERVICE", price_cents=PRICE_CENTS
            )
            token = cs_token()
            api_warm = paid_orders(CLIENTS, product)
            api_rate(web, token, api_warm)  # every web thread connected and warm
            bare, api = [], []
            for _ in range(ROUNDS):
                bare.append(bare_rate(paid_orders(REFUNDS, product)))
                api.append(api_rate(web, token, paid_orders(REFUNDS, product)))
            bare_median, api_median = statistics.median(bare), statistics.median(api)
            print(
                f"REST API refunds (gunicorn {WEB_WORKERS} workers x {WEB_THREADS} threads, "
                f"{CLIENTS} clients): {api_median:.1f}/s; bare NMI adapter refunds to the same "
                f"fake ({CLIENTS} threads): {bare_median:.1f}/s (median of {ROUNDS} rounds of "
                f"{REFUNDS}): ratio {api_median / bare_median:.2f}"
            )
            print(
                "  rounds: API " + ", ".join(f"{r:.1f}" for r in api)
                + "; bare " + ", ".join(f"{r:.1f}" for r in bare)
            )  # fmt: skip
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        _flush(BROKER_URL)


if __name__ == "__main__":
    main()
