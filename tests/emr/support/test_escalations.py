"""Escalations in the admin: opened from an order with the packet as it read, routed by the
checklist, resolved by the team it is routed to, with a note, in the audit history."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from billing.models import Payment
from billing.refunds import refund_order
from billing.states import PaymentKind
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import DomainError
from emr.support.escalations import open_escalation
from emr.support.models import Escalation
from emr.support.states import EscalationRoute, EscalationStatus
from integrations.pharmacy.states import PharmacyOrderStatus
from orders.states import OrderStatus
from tests.emr.support.conftest import add_pharmacy_order, add_visit, link_subscription
from tests.factories import make_order

pytestmark = pytest.mark.django_db

NEW = "admin:support_escalation_new"


def _refused_refund(order, settings, user) -> str:
    """Refund through NMI after its key was revoked; returns the sentence CS was shown."""
    charge = Payment.objects.get(invoice__order=order, kind=PaymentKind.CHARGE)
    settings.NMI_MERCHANT_ACCOUNT = charge.merchant_account
    settings.NMI_SECURITY_KEY = "revoked-key"
    with pytest.raises(DomainError) as refused:
        refund_order(order=order, actor=Actor.staff(user, door=Door.ADMIN), reason="Wants it back")
    assert refused.value.code == "refund.gateway_auth_failed"
    return refused.value.detail


def _escalate(order, *, route=EscalationRoute.BILLING, reason="Patient asked") -> Escalation:
    return open_escalation(
        order=order,
        route=route,
        patient_reason=reason,
        message="",
        actor=Actor.system("support-tests", door=Door.SHELL),
    )


def test_an_escalation_from_a_failed_refund_carries_every_packet_field(
    paid_order, settings, cs_user, client_for
):
    order = paid_order("nmi", 4500)
    patient, invoice = order.patient, order.invoice
    charge = Payment.objects.get(invoice=invoice)
    subscription = link_subscription(order)
    visit = add_visit(order)
    pharmacy_order = add_pharmacy_order(order)
    refusal = _refused_refund(order, settings, cs_user)
    client = client_for(cs_user)

    page = client.get(reverse(NEW), {"order": order.pk, "message": refusal})
    assert page.status_code == 200
    html = page.content.decode()
    assert f"<pre>Patient: {patient.full_name}" in html
    # The checklist's suggestion is pre-selected, and the message CS just got is prefilled.
    assert 'value="BILLING" required id="id_route_0" checked' in html
    assert "Gateway refund failed." in html
    assert f"\n{escape(refusal)}</textarea>" in html

    reason = "Moved abroad and never used the consultation."
    created = client.post(
        f"{reverse(NEW)}?order={order.pk}",
        {"route": "BILLING", "patient_reason": reason, "message": refusal},
    )
    escalation = Escalation.objects.get()
    assert created.status_code == 302
    assert created.url == reverse("admin:support_escalation_change", args=[escalation.pk])

    text = escalation.packet_text
    for expected in [
        f"ESCALATION {escalation.number} -> Billing/admin operations",
        f"Patient: {patient.full_name} <{patient.email}>",
        f"Order: {order.number}, status Processing",
        f"Invoice: {invoice.number}, status Paid",
        f"payment id {charge.pk}: Charge, Succeeded, NMI, $45.00, "
        f"transaction id {charge.transaction_id}",
        "Gateway: NMI",
        "Failed, $45.00 through NMI, asked by cs-agent: refund.gateway_auth_failed",
        f"Subscription: {subscription} (id {subscription.pk}), status Active",
        f"Beluga visit: {visit.master_id}, status Active",
        f"DispensePro {pharmacy_order.reference}: Sent to the pharmacy",
        "order not shipped",
    ]:
        assert expected in text
    lines = text.splitlines()
    assert reason in lines
    assert refusal in lines
    assert charge.transaction_id
    assert (escalation.message, escalation.patient_reason) == (refusal, reason)
    assert escalation.route == escalation.suggested_route == EscalationRoute.BILLING
    assert escalation.packet["order_number"] == order.number
    assert escalation.packet["refund_attempts"][0]["error_code"] == "refund.gateway_auth_failed"

    opened = escalation.history.get()
    assert (opened.history_actor, opened.history_door) == ("cs-agent", "admin")
    assert opened.history_change_reason == "Escalated to Billing/admin operations"


def test_the_packet_reads_as_it_was_when_the_order_changes_later(
    paid_order, gateways, system, client_for, cs_user
):
    order = paid_order("stripe", 3000)
    escalation = _escalate(order)
    refund_order(order=order, actor=system, reason="Billing refunded it")
    escalation.refresh_from_db()
    assert f"Order: {order.number}, status Processing" in escalation.packet_text
    page = client_for(cs_user).get(reverse("admin:support_escalation_change", args=[escalation.pk]))
    assert escape(f"Order: {order.number}, status Processing") in page.content.decode()


def test_the_route_is_editable_and_the_suggestion_is_kept(paid_order, cs_user, client_for):
    order = paid_order("stripe", 2500)
    add_pharmacy_order(order, status=PharmacyOrderStatus.SHIPPED)
    client_for(cs_user).post(
        f"{reverse(NEW)}?order={order.pk}",
        {"route": "FULFILMENT", "patient_reason": "Package never arrived", "message": ""},
    )
    escalation = Escalation.objects.get()
    assert escalation.route == EscalationRoute.FULFILMENT
    assert escalation.suggested_route == EscalationRoute.BILLING
    assert "Exact patient/staff-facing message:\n(none given)" in escalation.packet_text


def test_a_reason_is_required(paid_order, cs_user, client_for):
    order = paid_order("stripe", 2500)
    response = client_for(cs_user).post(
        f"{reverse(NEW)}?order={order.pk}", {"route": "BILLING", "patient_reason": " "}
    )
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Escalation.objects.exists()


def test_a_subscription_escalation_describes_its_latest_order(db, cs_user, client_for):
    older = make_order()
    subscription = link_subscription(older)
    latest = make_order(patient=older.patient)
    link_subscription(latest, subscription)
    response = client_for(cs_user).post(
        f"{reverse(NEW)}?subscription={subscription.pk}",
        {"route": "BILLING", "patient_reason": "Cannot cancel", "message": "You cannot cancel."},
    )
    assert response.status_code == 302
    escalation = Escalation.objects.get()
    assert (escalation.subscription, escalation.order, escalation.patient) == (
        subscription,
        latest,
        older.patient,
    )
    assert f"Order: {latest.number}, status Pending" in escalation.packet_text


def test_opening_by_order_number(db, cs_user, client_for):
    order = make_order()
    client = client_for(cs_user)
    assert client.get(reverse(NEW)).status_code == 200
    found = client.get(reverse(NEW), {"number": order.number.lower()})
    assert found.url == f"{reverse(NEW)}?order={order.pk}"
    missing = client.get(reverse(NEW), {"number": "ORD-999999"})
    assert "No order or subscription has that number." in missing.content.decode()


def test_resolving_needs_the_routed_teams_permission_and_a_note(
    db, cs_user, medical_ops, billing_admin, client_for
):
    escalation = _escalate(make_order())
    url = reverse("admin:support_escalation_resolve", args=[escalation.pk])
    change = reverse("admin:support_escalation_change", args=[escalation.pk])

    for user in (cs_user, medical_ops):
        refused = client_for(user).post(url, {"note": "Done"})
        assert refused.status_code == 403
        assert "is routed to Billing/admin operations; only that team may resolve it" in (
            refused.content.decode()
        )
        assert 'id="resolve-link"' not in client_for(user).get(change).content.decode()

    client = client_for(billing_admin)
    assert 'id="resolve-link"' in client.get(change).content.decode()
    empty = client.post(url, {"note": "  "})
    assert empty.status_code == 200
    assert "This field is required." in empty.content.decode()
    escalation.refresh_from_db()
    assert escalation.status == EscalationStatus.OPEN

    done = client.post(url, {"note": "Refunded in the NMI dashboard after re-keying."})
    assert done.url == change
    escalation.refresh_from_db()
    assert escalation.status == EscalationStatus.RESOLVED
    assert escalation.resolved_by == billing_admin
    assert escalation.resolved_by_label == "billing-admin"
    assert escalation.resolved_at is not None
    resolved = escalation.history.order_by("history_id").last()
    assert resolved.history_actor == "billing-admin"
    assert resolved.history_change_reason == (
        "Resolved: Refunded in the NMI dashboard after re-keying."
    )
    page = client.get(change).content.decode()
    assert 'id="resolve-link"' not in page
    assert "Refunded in the NMI dashboard after re-keying." in page
    again = client.post(url, {"note": "Twice"}, follow=True)
    assert "is already resolved" in again.content.decode()
    history = client.get(reverse("admin:support_escalation_history", args=[escalation.pk]))
    assert "Refunded in the NMI dashboard after re-keying." in history.content.decode()


def test_medical_ops_resolve_medical_escalations_and_billing_does_not(
    db, medical_ops, billing_admin, client_for
):
    escalation = _escalate(make_order(), route=EscalationRoute.MEDICAL)
    url = reverse("admin:support_escalation_resolve", args=[escalation.pk])
    assert client_for(billing_admin).post(url, {"note": "x"}).status_code == 403
    assert client_for(medical_ops).post(url, {"note": "Intake re-reviewed."}).status_code == 302
    escalation.refresh_from_db()
    assert escalation.status == EscalationStatus.RESOLVED


def test_the_list_filters_by_route_and_state_and_searches_numbers_and_email(
    db, cs_user, client_for
):
    first, second = make_order(), make_order()
    billing = _escalate(first)
    medical = _escalate(second, route=EscalationRoute.MEDICAL)
    client = client_for(cs_user)
    changelist = reverse("admin:support_escalation_changelist")

    def listed(**params) -> set[str]:
        html = client.get(changelist, params).content.decode()
        return {e.number for e in (billing, medical) if f">{e.number}<" in html}

    assert listed() == {billing.number, medical.number}
    assert listed(route__exact="MEDICAL") == {medical.number}
    assert listed(status__exact="OPEN") == {billing.number, medical.number}
    assert listed(status__exact="RESOLVED") == set()
    assert listed(q=first.number) == {billing.number}
    assert listed(q=second.invoice.number) == {medical.number}
    assert listed(q=first.patient.email) == {billing.number}


def test_roles_without_the_permission_are_refused_with_a_sentence(
    db, medical_ops, nobody, client_for
):
    order = make_order()
    refused = client_for(medical_ops).get(reverse(NEW), {"order": order.pk})
    assert refused.status_code == 403
    assert "Your role may not open escalations." in refused.content.decode()

    listing = client_for(nobody).get(reverse("admin:support_escalation_changelist"))
    assert listing.status_code == 403
    assert "Your role may not see escalations." in listing.content.decode()
    assert not Escalation.objects.exists()


def test_an_unknown_order_is_a_404(db, cs_user, client_for):
    client = client_for(cs_user)
    assert client.get(reverse(NEW), {"order": "999999"}).status_code == 404
    assert client.get(reverse(NEW), {"order": "abc"}).status_code == 404


def test_an_order_refunded_while_fulfilment_continues_goes_to_fulfilment(paid_order, system):
    order = paid_order("stripe", 2000)
    add_pharmacy_order(order)
    refund_order(order=order, actor=system, reason="Refunded")
    escalation = open_escalation(
        order=order, patient_reason="Refunded but the parcel is coming", actor=system
    )
    assert escalation.packet["order_status"] == OrderStatus.REFUNDED
    assert escalation.route == EscalationRoute.FULFILMENT
