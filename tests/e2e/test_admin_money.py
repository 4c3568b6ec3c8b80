"""Audited records in a real browser: the order page has no field to type into, only tools that
confirm, ask why, call the service and answer in a sentence; a billing admin switches the active
gateway and reads the refusal for one this server has no keys for. Besides the per-test shot in
test-output/screenshots/, each page is captured in SHOTS (ADMIN_SHOTS_DIR) for review."""

import os
from pathlib import Path

import pytest

from audit.models import DecisionRecord
from billing import payments
from billing.models import GatewaySettings
from orders.models import Order
from orders.states import OrderStatus
from tests.e2e.conftest import SCREENSHOTS
from tests.factories import PatientFactory, ProductFactory, make_order
from tests.fixtures.gateways import STRIPE_CARD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

SHOTS = Path(os.environ.get("ADMIN_SHOTS_DIR", SCREENSHOTS / "pages"))


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _editable_controls(page) -> int:
    return page.locator(
        "#order_form input:not([type=hidden]), #order_form select, #order_form textarea"
    ).count()


def test_cs_records_a_lab_fact_from_a_page_with_nothing_to_edit(
    page, live_server, log_in, cs_user, gateways, system
):
    payments.set_active_gateway(gateway="stripe", actor=system, reason="e2e setup")
    patient = PatientFactory(first_name="Mara", last_name="Quinn")
    card = payments.save_card(patient=patient, gateway="stripe", token=STRIPE_CARD, actor=system)
    order = make_order(
        patient=patient,
        products=[ProductFactory(name="Hormone lab panel", requires_labs=True, price_cents=18000)],
    )
    payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=system)
    log_in(page, cs_user)

    page.goto(f"{live_server.url}/admin/orders/order/{order.pk}/change/")
    _shot(page, "order-page")
    assert page.inner_text("#order-status") == "Awaiting lab requisition"
    assert _editable_controls(page) == 0
    assert page.locator("input[name=_save]").count() == 0

    page.click("a[data-tool=record_requisition_sent]")
    _shot(page, "order-tool-confirm")
    assert "recalculates the order's status" in page.inner_text("#content")
    page.fill("#id_reason", "Requisition faxed to the lab")
    page.click("#confirm-tool input[type=submit]")

    sentence = page.wait_for_selector(".messagelist .success").inner_text()
    _shot(page, "order-tool-result")
    assert sentence == (
        f"Lab requisition sent: recorded for {order.number}. Recalculated from its facts, the "
        "order is now Awaiting lab results."
    )
    assert page.inner_text("#order-status") == "Awaiting lab results"
    assert page.locator("a[data-tool=record_results_received]").count() == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.AWAITING_RESULTS


def test_cs_refunds_two_orders_and_reads_what_happened_to_each(
    page, browser, live_server, log_in, cs_user, billing_admin, paid_order
):
    stripe_order = paid_order("stripe", 45000)
    nmi_order = paid_order("nmi", 12000)
    log_in(page, cs_user)
    page.goto(f"{live_server.url}/admin/orders/order/")
    for order in (stripe_order, nmi_order):
        page.check(f"input[name=_selected_action][value='{order.pk}']")
    page.select_option("select[name=action]", "refund_orders")
    page.click("button[name=index]")

    _shot(page, "orders-bulk-refund-confirm")
    assert "To be refunded: NMI $120.00, Stripe $450.00." in page.inner_text(".action-summary")
    assert page.locator("table.preflight").count() == 2
    page.fill("#id_reason", "Clinic closed the programme")
    page.click("#reasoned-action input[type=submit]")

    page.wait_for_selector(".messagelist .success")
    _shot(page, "orders-bulk-refund-result")
    messages = page.inner_text(".messagelist")
    assert f"{stripe_order.number}: refunded $450.00 through Stripe." in messages
    assert f"{nmi_order.number}: refunded $120.00 through NMI." in messages
    assert "done" not in messages

    # A billing admin reads, for each order, the checklist CS confirmed.
    decision = DecisionRecord.objects.get(order=stripe_order)
    admin_page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(admin_page, billing_admin)
    admin_page.goto(f"{live_server.url}/admin/audit/decisionrecord/{decision.pk}/change/")
    _shot(admin_page, "audit-decision-record")
    shown = admin_page.inner_text(".field-checklist")
    assert "OK Invoice:" in shown and decision.items[1]["sentence"] in shown
    admin_page.context.close()


def test_a_billing_admin_switches_the_gateway_and_is_refused_an_unconfigured_one(
    page, live_server, log_in, billing_admin, gateways, system, settings
):
    payments.set_active_gateway(gateway="stripe", actor=system, reason="e2e setup")
    log_in(page, billing_admin)

    page.goto(f"{live_server.url}/admin/billing/gatewaysettings/")
    _shot(page, "gateway-page")
    assert "Stripe: configured" in page.inner_text("#content")
    page.click("a[data-tool=switch_to_nmi]")
    _shot(page, "gateway-switch-confirm")
    assert "Yes:" in page.inner_text("#preflight")
    page.fill("#id_reason", "Moving to the new processor contract")
    page.click("#confirm-tool input[type=submit]")

    sentence = page.wait_for_selector(".messagelist .success").inner_text()
    assert sentence.startswith("NMI is now the active gateway")
    assert GatewaySettings.load().active_gateway == "nmi"

    settings.STRIPE_SECRET_KEY = ""  # the keys were taken off this server
    page.reload()
    page.click("a[data-tool=switch_to_stripe]")
    _shot(page, "gateway-switch-blocked")
    assert "No: STRIPE_SECRET_KEY is not set." in page.inner_text("#preflight")
    assert "will refuse" in page.inner_text("#content")
    page.fill("#id_reason", "Back to Stripe")
    page.click("#confirm-tool input[type=submit]")

    refusal = page.wait_for_selector(".messagelist .error").inner_text()
    _shot(page, "gateway-switch-refused")
    assert "Stripe is not configured on this server (STRIPE_SECRET_KEY not set)" in refusal
    assert GatewaySettings.load().active_gateway == "nmi"
