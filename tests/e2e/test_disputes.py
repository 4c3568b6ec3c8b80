"""A billing admin in a real browser: the disputes list, soonest evidence due first; a
Stripe dispute's page; submitting its evidence packet; the sentence that follows."""

import pytest
import requests

from billing import payments
from billing.disputes import apply_gateway_dispute, stripe_dispute_update
from billing.models import Dispute, Payment
from billing.states import PaymentKind
from tests.e2e.conftest import SCREENSHOTS
from tests.factories import PatientFactory, ProductFactory, make_order
from tests.fixtures.gateways import STRIPE_CARD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def _disputed_order(gateways, system, *, due_in_days: int, name: str):
    payments.set_active_gateway(gateway="stripe", actor=system, reason="e2e setup")
    patient = PatientFactory(first_name=name, last_name="Ortiz")
    card = payments.save_card(patient=patient, gateway="stripe", token=STRIPE_CARD, actor=system)
    order = make_order(patient=patient, products=[ProductFactory(price_cents=24000)])
    payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=system)
    charge = Payment.objects.get(invoice__order=order, kind=PaymentKind.CHARGE)
    obj = gateways.stripe._control(
        "disputes",
        {
            "payment_intent": charge.transaction_id,
            "due_in_days": due_in_days,
            "reason": "product_not_received",
        },
    )
    dispute, _ = apply_gateway_dispute(
        update=stripe_dispute_update(obj), gateway="stripe", actor=system
    )
    return order, dispute


def test_a_billing_admin_opens_a_dispute_and_submits_its_packet(
    page, live_server, log_in, billing_admin, gateways, system
):
    later_order, _later = _disputed_order(gateways, system, due_in_days=12, name="Rafa")
    order, dispute = _disputed_order(gateways, system, due_in_days=3, name="Noor")
    log_in(page, billing_admin)

    page.goto(f"{live_server.url}/admin/billing/dispute/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    assert order.number in rows.nth(0).inner_text()  # due in 3 days: first
    assert "(in 2 days)" in rows.nth(0).inner_text() or "(in 3 days)" in rows.nth(0).inner_text()
    assert later_order.number in rows.nth(1).inner_text()
    page.screenshot(path=str(SCREENSHOTS / "disputes-list.png"), full_page=True)

    page.click(f"#result_list a:text('{dispute.gateway_dispute_id}')")
    assert "Needs a response" in page.inner_text("#content")
    assert "Download the evidence packet (PDF)" in page.inner_text("#content")
    page.click("a[data-tool=submit_evidence]")
    assert "uploaded to Stripe" in page.inner_text("#content")
    page.fill("#id_reason", "Patient received all six sessions; terms accepted in the portal")
    page.click("#confirm-tool input[type=submit]")

    sentence = page.wait_for_selector(".messagelist .success").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "dispute-submitted.png"), full_page=True)
    assert f"Evidence of dispute {dispute.gateway_dispute_id} submitted to Stripe" in sentence
    assert "Evidence submitted, under review" in sentence
    assert page.locator("a[data-tool=submit_evidence]").count() == 0  # offered no more
    assert Dispute.objects.get(pk=dispute.pk).status == "under_review"
    ledger = requests.get(f"{gateways.stripe.api_base}/_fake/evidence", timeout=5).json()
    assert [update["dispute"] for update in ledger["dispute_updates"]] == [
        dispute.gateway_dispute_id
    ]
