"""Money moves at most once: concurrent refunds, a process killed mid-refund, and a timeout.

These tests commit for real (transactional_db): threads and child processes need to see each
other's rows, and the order row lock is what is being tested.
"""

import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection

from billing.models import Payment, RefundAttempt
from billing.refund_reconciler import reconcile_refunds
from billing.refunds import refund_order
from billing.states import PaymentKind, PaymentStatus, RefundAttemptStatus
from emr.kernel.actors import Actor
from emr.kernel.errors import DomainError
from orders.models import Order
from orders.states import OrderStatus
from tests.fixtures.orders import subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)

NOW = timedelta(0)


def _nmi_refunds(nmi) -> list[dict]:
    return [row for row in nmi.transactions() if row["type"] in {"refund", "void"}]


def _wait_for(condition, *, seconds: float = 15, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_twenty_concurrent_refunds_move_money_once(paid_order, gateways, system):
    order = paid_order("stripe", 15000)
    start = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def refund() -> None:
        start.wait()
        try:
            refund_order(order=order, actor=system, reason="race")
            outcome = "refunded"
        except DomainError as error:
            outcome = error.code
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=refund) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(outcomes) == 20
    assert outcomes.count("refunded") == 1
    assert set(outcomes) - {"refunded"} <= {"refund.in_progress", "refund.already_refunded"}
    assert [r["amount"] for r in gateways.stripe.refunds()] == [15000]
    refunds = Payment.objects.filter(invoice__order=order, kind=PaymentKind.REFUND)
    assert [(r.status, r.amount_cents) for r in refunds] == [(PaymentStatus.REFUNDED, 15000)]
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED


def test_a_crash_after_the_gateway_refunded_is_completed_by_the_reconciler(paid_order, gateways):
    order = paid_order("nmi", 9000)
    gateways.nmi.settle()  # a settled sale is refunded (not voided): a new NMI transaction
    # NMI applies the refund, then holds its answer: the process is killed while it waits.
    gateways.nmi.inject("hang", seconds=30, on="refund")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "refund_order", order.number, "--reason", "Crash test"],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(lambda: len(_nmi_refunds(gateways.nmi)) == 1, what="NMI to apply the refund")
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=10)

    attempt = RefundAttempt.objects.get(order=order)
    assert attempt.status == RefundAttemptStatus.PENDING  # committed before the call; no answer
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PROCESSING
    with pytest.raises(DomainError) as refused:
        refund_order(order=order, actor=Actor.system("cs-retry"), reason="CS tries again")
    assert refused.value.code == "refund.in_progress"

    assert reconcile_refunds(older_than=NOW) == 1

    order.refresh_from_db()
    assert (order.status, order.refunded_cents) == (OrderStatus.REFUNDED, 9000)
    attempt.refresh_from_db()
    assert attempt.status == RefundAttemptStatus.SUCCEEDED
    assert attempt.refund_payment.status == PaymentStatus.REFUNDED
    assert len(_nmi_refunds(gateways.nmi)) == 1  # still exactly one refund at the gateway
    assert reconcile_refunds(older_than=NOW) == 0


def test_an_nmi_timeout_is_looked_up_before_any_retry(paid_order, gateways, settings, system):
    order = paid_order("nmi", 7000)
    gateways.nmi.settle()
    settings.GATEWAY_TIMEOUT_SECONDS = 1
    gateways.nmi.inject("hang", seconds=3, on="refund")

    with pytest.raises(DomainError) as unknown:
        refund_order(order=order, actor=system, reason="Timeout test")
    assert unknown.value.code == "refund.outcome_unknown"
    assert "Do not refund again" in unknown.value.detail
    _wait_for(lambda: len(_nmi_refunds(gateways.nmi)) == 1, what="the refund at NMI")

    with pytest.raises(DomainError) as retry:
        refund_order(order=order, actor=system, reason="Retry")
    assert retry.value.code == "refund.in_progress"

    assert reconcile_refunds(older_than=NOW) == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED
    assert len(_nmi_refunds(gateways.nmi)) == 1


def test_a_refund_that_failed_while_its_answer_was_lost_is_recorded_failed(
    paid_order, gateways, system
):
    order = paid_order("stripe", 4500)
    gateways.stripe.next_refund("failed", failure_reason="declined")
    gateways.stripe.fault("drop_after_apply")
    with pytest.raises(DomainError) as unknown:
        refund_order(order=order, actor=system, reason="Lost answer")
    assert unknown.value.code == "refund.outcome_unknown"

    assert reconcile_refunds(older_than=NOW) == 1

    attempt = RefundAttempt.objects.get(order=order)
    assert (attempt.status, attempt.error_code) == (
        RefundAttemptStatus.FAILED,
        "refund.gateway_failed",
    )
    assert "The card issuer declined the refund." in attempt.error_message
    assert reconcile_refunds(older_than=NOW) == 0  # resolved for good, not asked again
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PROCESSING
    refund_order(order=order, actor=system, reason="Second try")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.REFUNDED


def test_a_refund_the_gateway_never_received_fails_cleanly(paid_order, gateways, settings, system):
    order = paid_order("stripe", 5000)
    # The server is unreachable: the request never arrives, so nothing can have moved.
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    with pytest.raises(DomainError) as unknown:
        refund_order(order=order, actor=system, reason="Unreachable")
    assert unknown.value.code == "refund.outcome_unknown"

    settings.STRIPE_API_BASE = gateways.stripe.api_base
    assert reconcile_refunds(older_than=NOW) == 1
    attempt = RefundAttempt.objects.get(order=order)
    assert (attempt.status, attempt.error_code) == (
        RefundAttemptStatus.FAILED,
        "refund.gateway_failed",
    )
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PROCESSING
    # Nothing moved, so CS may refund again, and this time it goes through once.
    refund_order(order=order, actor=system, reason="Second try")
    assert [r["amount"] for r in gateways.stripe.refunds()] == [5000]
