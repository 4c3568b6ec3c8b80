"""Two billing sweeps at once never bill a period twice (they commit for real: threads must see
each other's rows and locks), and a sweep that dies between claim and charge loses nothing."""

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.db import connection

from subscriptions.billing_cycle import (
    CHARGE_LEASE,
    _claim_renewal,
    retry_recovery_charges,
    run_billing_cycle,
)
from subscriptions.models import Subscription
from tests.fixtures.stripe import STRIPE_TEST_KEY
from tests.subscriptions.conftest import make_plan

RENEWAL = datetime(2026, 2, 15, 9, 0, tzinfo=UTC)
SWEEPS = 3


def stripe_charges(gateways) -> int:
    """PaymentIntents the Stripe fake holds (it is reset for each test)."""
    response = requests.get(
        f"{gateways.stripe.api_base}/v1/payment_intents",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {STRIPE_TEST_KEY}"},
        timeout=5,
    )
    response.raise_for_status()
    return len(response.json()["data"])


@pytest.mark.django_db(transaction=True)
def test_racing_sweeps_bill_each_subscription_once(clock, subscribe, gateways):
    plan = make_plan()
    subscriptions = [subscribe(plan=plan) for _ in range(6)]
    assert stripe_charges(gateways) == 6
    clock.move_to(RENEWAL, tick=False)
    start = threading.Barrier(SWEEPS)
    outcomes: Counter = Counter()
    lock = threading.Lock()

    def sweep() -> None:
        start.wait()
        try:
            summary = run_billing_cycle(as_of=RENEWAL)
        finally:
            connection.close()
        with lock:
            outcomes.update(summary.outcomes)

    threads = [threading.Thread(target=sweep) for _ in range(SWEEPS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert outcomes["paid"] == 6
    assert set(outcomes) <= {"paid", "skipped"}
    assert stripe_charges(gateways) == 12  # six first payments, six renewals: one charge each
    for subscription in subscriptions:
        assert Subscription.objects.get(pk=subscription.pk).orders.count() == 2


@pytest.mark.django_db
def test_a_sweep_that_died_after_its_claim_is_charged_by_the_retry_sweep(clock, subscribe):
    subscription = subscribe()
    clock.move_to(RENEWAL, tick=False)
    order, _card = _claim_renewal(
        subscription_id=subscription.pk, due_at=RENEWAL, actor=subscription_actor()
    )  # ... and the process dies here, before the gateway is called

    assert run_billing_cycle(as_of=RENEWAL).outcomes == {}  # the period is claimed
    clock.move_to(RENEWAL + CHARGE_LEASE - timedelta(seconds=1), tick=False)
    assert retry_recovery_charges().outcomes == {}
    clock.move_to(RENEWAL + CHARGE_LEASE, tick=False)
    assert retry_recovery_charges().outcomes == {"paid": 1}
    order.refresh_from_db()
    assert order.invoice.status == "PAID" and order.recovery_next_retry_at is None


def subscription_actor():
    from emr.kernel.actors import Actor

    return Actor.system("billing-cycle")
