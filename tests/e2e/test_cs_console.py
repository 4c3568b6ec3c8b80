"""A CS agent at work in a real browser: refund from the order page, read a refusal, cancel a
subscription, escalate. A screenshot per scenario lands in test-output/screenshots/."""

import pytest

from billing.models import Payment
from emr.kernel.actors import Actor
from emr.support.models import Escalation
from orders.models import Order
from orders.services import change_status
from orders.states import OrderStatus
from subscriptions.states import SubscriptionStatus
from tests.factories import SubscriptionFactory, make_order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def _order_page(live_server, order) -> str:
    return f"{live_server.url}/admin/orders/order/{order.pk}/change/"


def test_cs_refunds_a_paid_order_and_sees_it_locked(page, live_server, log_in, cs_user, paid_order):
    order = paid_order("stripe", 12500)
    log_in(page, cs_user)
    page.goto(_order_page(live_server, order))
    assert page.inner_text("#order-status") == "Processing"

    page.click("a[data-tool=refund]")
    checklist = page.inner_text("#preflight")
    assert "Stripe" in checklist and "$125.00 of $125.00" in checklist
    page.fill("#id_reason", "Patient cancelled within the policy window")
    page.click("#confirm-tool input[type=submit]")

    page.wait_for_selector(".messagelist .success")
    assert page.inner_text("#order-status") == "Refunded"
    assert "locked" in page.inner_text("#order-locked")
    assert page.locator("a[data-tool]").count() == 0  # no status tools on a locked order
    refund = Payment.objects.get(invoice__order=order, kind="REFUND")
    assert (refund.status, refund.amount_cents) == ("REFUNDED", 12500)
    assert Order.history.filter(id=order.pk).latest("history_id").history_door == "admin"


def test_cs_reads_the_refusal_for_an_order_that_was_never_paid(
    page, live_server, log_in, cs_user, gateways
):
    order = make_order()
    change_status(
        order=order, target=OrderStatus.CANCELLED, actor=Actor.system("e2e"), reason="Duplicate"
    )
    log_in(page, cs_user)
    page.goto(_order_page(live_server, order))

    page.click("a[data-tool=refund]")
    assert "BLOCKED" in page.inner_text("#preflight")
    assert "will refuse" in page.inner_text("#content")
    page.fill("#id_reason", "Patient says they were charged")
    page.click("#confirm-tool input[type=submit]")

    error = page.wait_for_selector(".messagelist .error").inner_text()
    assert "refund.no_successful_payment" in error
    assert "cannot refund it automatically" in error
    assert "Escalate" in error
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED


def test_cs_escalates_a_refused_refund_with_the_exact_message(
    page, live_server, log_in, cs_user, gateways
):
    order = make_order()
    change_status(
        order=order, target=OrderStatus.CANCELLED, actor=Actor.system("e2e"), reason="Duplicate"
    )
    log_in(page, cs_user)
    page.goto(_order_page(live_server, order))
    page.click("a[data-tool=refund]")
    page.fill("#id_reason", "Patient says they were charged twice")
    page.click("#confirm-tool input[type=submit]")

    page.click(".messagelist .error a")  # "Escalate with these details"
    preview = page.inner_text("#packet-preview")
    assert order.number in preview and order.invoice.number in preview
    assert "no_successful_payment" in page.input_value("#id_message")
    page.fill("#id_patient_reason", "Bank statement shows a charge for this order")
    page.click("#escalation-form input[type=submit]")

    page.wait_for_selector(".messagelist .success")
    escalation = Escalation.objects.get()
    assert escalation.order_id == order.pk
    assert escalation.status == "OPEN"
    assert "Bank statement shows a charge" in escalation.packet_text
    assert "refund.no_successful_payment" in escalation.packet_text


def test_cs_cancels_a_subscription_after_reading_the_checklist(page, live_server, log_in, cs_user):
    subscription = SubscriptionFactory()
    log_in(page, cs_user)
    page.goto(f"{live_server.url}/admin/subscriptions/subscription/")
    page.check(f"input[name=_selected_action][value='{subscription.pk}']")
    page.select_option("select[name=action]", "cancel")
    page.click("button[name=index]")

    checklist = page.inner_text(".preflight")
    assert "No financed balance" in checklist
    assert "refund past orders" in page.inner_text("#content")
    page.fill("#id_reason", "Patient moving abroad")
    page.click("#reasoned-action input[type=submit]")

    page.wait_for_selector(".messagelist .success")
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELLED
    assert subscription.cancelled_at is not None
    assert subscription.history.latest("history_id").history_change_reason == (
        "Patient moving abroad"
    )
