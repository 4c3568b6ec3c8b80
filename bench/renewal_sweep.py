"""What the renewal sweep costs per subscription, and how it scales.

For 10k and then 100k ACTIVE subscriptions, in one run, against our Stripe fake (a real local
HTTP server):
- nothing due: one `run_billing_cycle` over the population (median of a few runs), against a
  bare set-based UPDATE touching every one of those rows;
- 10% due: the sweep bills each due subscription for real (cycle order, invoice, cycle row,
  charge at the fake, recording, recovery hook, events, history), against a bare set-based
  UPDATE advancing the same rows' billing date in one statement.
It prints the per-subscription cost of each against its baseline, and the 100k/10k ratio of the
sweep's total time: the work grows tenfold, so near 10 is linear; more would mean a per-row cost
that grows with the table (a scan, a missing index), which must never happen.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/emr_billing \
    REDIS_URL=redis://127.0.0.1:6379/0 python bench/renewal_sweep.py

It creates and drops its own database, and uses Redis database 7 for the workflow events'
broker messages (flushed before and after); nothing else is touched. BENCH_SIZES="1000,10000"
runs other sizes (the ratio compares the last with the first).
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emr.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/emr_billing")
BENCH_REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "7"))
_redis = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
os.environ["REDIS_URL"] = urlunsplit(_redis._replace(path=f"/{BENCH_REDIS_DB}"))

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from billing import payments  # noqa: E402
from billing.models import PaymentMethod  # noqa: E402
from emr.kernel.actors import Actor  # noqa: E402
from emr.models import Patient  # noqa: E402
from orders.models import Order, Product  # noqa: E402
from subscriptions.billing_cycle import run_billing_cycle  # noqa: E402
from subscriptions.models import Plan, Subscription  # noqa: E402
from subscriptions.states import BillingInterval, SubscriptionStatus  # noqa: E402
from tests.fixtures.servers import free_port, run_server  # noqa: E402
from tests.fixtures.stripe import STRIPE_TEST_KEY  # noqa: E402

SIZES = [int(size) for size in os.environ.get("BENCH_SIZES", "10000,100000").split(",")]
DUE_SHARE = 0.10
COUNTED_RENEWALS = 20  # renewals whose SQL statements are counted, at each size
NOTHING_DUE_RUNS = 5
BATCH = 5000
ACTOR = Actor.system("bench")
TABLE = Subscription._meta.db_table  # our own table's name, never input (the noqa: S608 below)
VISA_TEST_CARD = "pm_card_visa"  # the fake's test card, never a card number


class Population:
    """ACTIVE monthly subscriptions, each with its own patient and saved card, none due."""

    def __init__(self, plan: Plan, card_token: str):
        self.plan, self.card_token = plan, card_token
        self.ids: list[int] = []
        self.now = timezone.now()

    def grow_to(self, size: int) -> None:
        # Seeded in bulk: only their presence matters here (the sweep under test writes its own
        # rows through the services, with history).
        while len(self.ids) < size:
            count = min(BATCH, size - len(self.ids))
            patients = Patient.objects.bulk_create(
                Patient(first_name="Bench", last_name="Patient", email=f"{uuid.uuid4().hex}@b.test")
                for _ in range(count)
            )
            cards = PaymentMethod.objects.bulk_create(
                PaymentMethod(
                    patient=p,
                    gateway="stripe",
                    gateway_token=self.card_token,
                    brand="visa",
                    last4="4242",
                    exp_month=12,
                    exp_year=2034,
                    is_default=True,
                )
                for p in patients
            )
            subscriptions = Subscription.objects.bulk_create(
                Subscription(
                    patient=p,
                    plan=self.plan,
                    payment_method=c,
                    cycles_billed=1,
                    financed_cycles_paid=0,
                    started_at=self.now - timedelta(days=10),
                    next_billing_at=self.now + timedelta(days=20),
                )
                for p, c in zip(patients, cards, strict=True)
            )
            self.ids += [s.pk for s in subscriptions]
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {TABLE}")

    def make_due(self, share: float, as_of) -> list[int]:
        """Every (1/share)th subscription falls due an hour before `as_of`."""
        due = self.ids[:: round(1 / share)]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {TABLE} SET next_billing_at = %s WHERE id = ANY(%s)",  # noqa: S608
                [as_of - timedelta(hours=1), due],
            )
        return due


def bare_update_seconds(ids: list[int]) -> float:
    """The baseline: one set-based UPDATE advancing those rows' date, rolled back."""
    started = time.perf_counter()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {TABLE} SET next_billing_at = next_billing_at + interval '1 month', "  # noqa: S608
                "cycles_billed = cycles_billed + 1 WHERE id = ANY(%s)",
                [ids],
            )
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed


def sweep_seconds(as_of) -> tuple[float, dict]:
    started = time.perf_counter()
    summary = run_billing_cycle(as_of=as_of, actor=ACTOR)
    return time.perf_counter() - started, dict(summary.outcomes)


def per_row(seconds: float, rows: int) -> str:
    return f"{seconds / rows * 1e6:10.2f} µs"


def measure(population: Population, size: int) -> dict:
    population.grow_to(size)
    as_of = timezone.now()
    nothing = [sweep_seconds(as_of)[0] for _ in range(NOTHING_DUE_RUNS)]
    nothing_sweep = statistics.median(nothing)
    nothing_bare = statistics.median(bare_update_seconds(population.ids) for _ in range(3))
    print(
        f"{size:>7} subscriptions, nothing due: sweep {nothing_sweep * 1000:8.2f} ms "
        f"({per_row(nothing_sweep, size)}/subscription) vs bare UPDATE of all rows "
        f"{nothing_bare * 1000:8.2f} ms ({per_row(nothing_bare, size)}/subscription): "
        f"ratio {nothing_sweep / nothing_bare:.2g}x"
    )
    due = population.make_due(DUE_SHARE, as_of)
    due_bare = bare_update_seconds(due)
    orders_before = Order.objects.count()
    due_sweep, outcomes = sweep_seconds(as_of)
    orders = Order.objects.count() - orders_before
    assert outcomes == {"paid": len(due)} and orders == len(due), (outcomes, orders)
    print(
        f"{size:>7} subscriptions, {len(due)} due: sweep {due_sweep:8.2f} s "
        f"({per_row(due_sweep, len(due))}/renewal, charged at the fake) vs bare UPDATE "
        f"{due_bare * 1000:8.2f} ms ({per_row(due_bare, len(due))}/row): "
        f"ratio {due_sweep / due_bare:.0f}x"
    )
    # Billed once: the same moment again finds nothing.
    assert sweep_seconds(as_of)[1] == {}
    statements = statements_per_renewal(population, as_of)
    print(
        f"{size:>7} subscriptions: SQL statements per renewal {statements:.1f} "
        f"(a sweep of {COUNTED_RENEWALS} due, paging included)"
    )
    return {"nothing": nothing_sweep, "due": due_sweep, "statements": statements}


def statements_per_renewal(population: Population, as_of) -> float:
    """Every statement of a sweep billing COUNTED_RENEWALS subscriptions, per renewal: the
    claim, cycle order and invoice, charge, recording, recovery hook, events and history."""
    due = population.ids[1 : 1 + COUNTED_RENEWALS]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET next_billing_at = %s WHERE id = ANY(%s)",  # noqa: S608
            [as_of - timedelta(minutes=30), due],  # not the period the 10% sweep billed
        )
    connection.queries_log.clear()  # a full log (DEBUG) would capture nothing
    with CaptureQueriesContext(connection) as captured:
        _, outcomes = sweep_seconds(as_of)
    assert outcomes == {"paid": len(due)}, outcomes
    return len(captured.captured_queries) / len(due)


def main() -> None:
    logging.getLogger("stripe").setLevel(logging.WARNING)  # one INFO line per request otherwise
    stripe_port = free_port()
    settings.STRIPE_SECRET_KEY = STRIPE_TEST_KEY
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{stripe_port}"
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.flushdb()
    database = settings.DATABASES["default"]
    old_name = database["NAME"]
    database.setdefault("TEST", {})["NAME"] = f"bench_renewals_{os.getpid()}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    argv = [sys.executable, "-m", "integrations.fakes.stripe", "--port", str(stripe_port)]
    try:
        with run_server([*argv, "--api-key", STRIPE_TEST_KEY], stripe_port):
            payments.set_active_gateway(gateway="stripe", actor=ACTOR, reason="bench")
            owner = Patient.objects.create(first_name="Card", last_name="Owner", email="o@b.test")
            card = payments.save_card(
                patient=owner,
                gateway="stripe",
                token=VISA_TEST_CARD,
                actor=ACTOR,
            )
            product = Product.objects.create(
                name="Bench membership", kind="MEMBERSHIP", price_cents=9900
            )
            plan = Plan.objects.create(
                name="Bench monthly", product=product, price_cents=9900,
                interval=BillingInterval.MONTH,
            )  # fmt: skip
            population = Population(plan, card.gateway_token)
            results = {size: measure(population, size) for size in SIZES}
        small, large = SIZES[0], SIZES[-1]
        print(
            "SQL statements per renewal: "
            + ", ".join(f"{results[n]['statements']:.1f} with {n:,}" for n in SIZES)
        )
        for scenario in ("nothing", "due"):
            ratio = results[large][scenario] / results[small][scenario]
            print(
                f"scaling {large // 1000}k/{small // 1000}k, "
                f"{'nothing due' if scenario == 'nothing' else '10% due'}: {ratio:.2f} "
                f"(work x{large / small:.0f})"
            )
        assert Subscription.objects.filter(status=SubscriptionStatus.ACTIVE).count() == large
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        broker.flushdb()


if __name__ == "__main__":
    main()
