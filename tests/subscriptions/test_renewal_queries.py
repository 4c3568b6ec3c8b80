"""What one renewal costs the database: the same statements however many subscriptions there
are, no more than RENEWAL_STATEMENTS, and one history row per audited save."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import PaymentMethod
from subscriptions.billing_cycle import run_billing_cycle
from subscriptions.models import Subscription
from tests.factories import PatientFactory
from tests.subscriptions.conftest import make_plan

pytestmark = pytest.mark.django_db

RENEWAL = datetime(2026, 2, 15, 9, 0, tzinfo=UTC)
# A sweep that bills one subscription: the active gateway read once, the due page and the
# empty page after it, the claim (cycle order, invoice, the lease), the PENDING charge, the
# charge and its recording (invoice PAID, order recalculated, the cycle counted), four events.
# Of these, 19 are still the events' payload reads (built per event from the database; the
# events themselves are now inserted together): lower this when they are built once.
RENEWAL_STATEMENTS = 63


def _renewal_statements(clock, as_of: datetime) -> int:
    clock.move_to(as_of, tick=False)
    with CaptureQueriesContext(connection) as captured:
        assert run_billing_cycle(as_of=as_of).outcomes == {"paid": 1}
    return len(captured.captured_queries)


def _add_subscriptions_not_due(count: int, plan) -> None:
    patients = [PatientFactory() for _ in range(count)]
    cards = PaymentMethod.objects.bulk_create(
        PaymentMethod(patient=p, gateway="stripe", gateway_token=f"pm_filler_{p.pk}",
                      brand="visa", last4="4242", exp_month=12, exp_year=2034, is_default=True)
        for p in patients
    )  # fmt: skip
    Subscription.objects.bulk_create(
        Subscription(patient=p, plan=plan, payment_method=c, cycles_billed=1,
                     started_at=RENEWAL - timedelta(days=10),
                     next_billing_at=RENEWAL + timedelta(days=20))
        for p, c in zip(patients, cards, strict=True)
    )  # fmt: skip


def test_a_renewal_costs_the_same_statements_at_any_database_size(clock, subscribe):
    plan = make_plan()
    first = subscribe(plan=plan)  # at START (Jan 15): renews on RENEWAL (Feb 15)
    clock.shift(timedelta(days=1))
    second = subscribe(plan=plan)  # renews a day later

    small = _renewal_statements(clock, RENEWAL)
    _add_subscriptions_not_due(200, plan)
    large = _renewal_statements(clock, RENEWAL + timedelta(days=1))

    assert (first.orders.count(), second.orders.count()) == (2, 2)
    assert small == large, (small, large)
    assert large <= RENEWAL_STATEMENTS, large
