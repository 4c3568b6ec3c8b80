"""The order page is read-only for every role: status, money and fulfilment facts change through
its tools and bulk actions, which call the services, recalculate the order and say in a sentence
what happened to each order."""

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from billing import payments
from billing.models import Payment
from billing.states import InvoiceStatus
from orders.models import Order, OrderItem, Product
from orders.states import OrderStatus
from tests.admin_tools import confirm_action, confirm_tool
from tests.emr.support.conftest import DECLINED_CARD
from tests.factories import PatientFactory, ProductFactory, make_order
from tests.fixtures.gateways import STRIPE_CARD

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:orders_order_changelist"


def _tool_url(order, tool: str) -> str:
    return reverse("admin:orders_order_tool", args=[order.pk, tool])


def _page(order) -> str:
    return reverse("admin:orders_order_change", args=[order.pk])


@pytest.fixture
def lab_order(gateways, system):
    """A paid order whose product needs labs: it waits for the lab requisition."""
    payments.set_active_gateway(gateway="stripe", actor=system, reason="test setup")
    patient = PatientFactory()
    card = payments.save_card(patient=patient, gateway="stripe", token=STRIPE_CARD, actor=system)
    order = make_order(
        patient=patient, products=[ProductFactory(requires_labs=True, price_cents=15000)]
    )
    payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=system)
    return Order.objects.get(pk=order.pk)


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root", "root@clinic.test", "test-pass-123")


def test_no_role_can_edit_the_order_page(
    lab_order, cs_user, billing_admin, superuser, admin_client_for
):
    for user in (cs_user, billing_admin, superuser):
        client = admin_client_for(user)
        page = client.get(_page(lab_order)).content.decode()
        assert 'name="_save"' not in page
        for field in ("patient", "subscription", "lab_requisition_sent_at", "shipped_at"):
            assert f'name="{field}' not in page, (user.username, field)

        posted = client.post(
            _page(lab_order), {"patient": PatientFactory().pk, "shipped_at_0": "2026-01-01"}
        )
        assert posted.status_code == 403
    order = Order.objects.get(pk=lab_order.pk)
    assert (order.patient_id, order.shipped_at) == (lab_order.patient_id, None)
    assert order.status == OrderStatus.AWAITING_REQUISITION


def test_cs_records_the_lab_facts_and_the_order_is_recalculated(
    lab_order, cs_user, admin_client_for
):
    client = admin_client_for(cs_user)
    page = client.get(_page(lab_order)).content.decode()
    assert 'data-tool="record_requisition_sent"' in page
    assert 'data-tool="record_results_received"' not in page  # nothing was sent yet

    confirm = client.get(_tool_url(lab_order, "record_requisition_sent")).content.decode()
    assert "recalculates the order" in confirm
    assert "reason" in confirm
    result = confirm_tool(
        client,
        _tool_url(lab_order, "record_requisition_sent"),
        {"reason": "Requisition faxed to Quest"},
        follow=True,
    ).content.decode()

    order = Order.objects.get(pk=lab_order.pk)
    assert order.status == OrderStatus.AWAITING_RESULTS
    assert order.lab_requisition_sent_at is not None
    assert (
        f"Lab requisition sent: recorded for {order.number}. Recalculated from its facts, the "
        "order is now Awaiting lab results." in result
    )
    last = order.history.latest("history_id")
    assert (last.history_actor, last.history_door) == ("cs-agent", "admin")
    assert last.history_change_reason == "Requisition faxed to Quest"

    confirm_tool(
        client, _tool_url(order, "record_results_received"), {"reason": "Results in the portal"}
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.PROCESSING
    assert order.lab_results_received_at is not None


def test_lab_tools_are_not_offered_for_an_order_without_labs(paid_order, cs_user, admin_client_for):
    order = paid_order("stripe")
    page = admin_client_for(cs_user).get(_page(order)).content.decode()
    assert "record_requisition_sent" not in page
    refused = confirm_tool(
        admin_client_for(cs_user),
        _tool_url(order, "record_requisition_sent"),
        {"reason": "try"},
        follow=True,
    )
    assert "can no longer be changed this way" in refused.content.decode()
    assert Order.objects.get(pk=order.pk).lab_requisition_sent_at is None


def test_the_reject_page_is_about_rejecting(paid_order, cs_user, admin_client_for):
    order = paid_order("stripe", 45000)
    page = admin_client_for(cs_user).get(_tool_url(order, "reject")).content.decode()
    assert f"Before you reject {order.number}" in page
    assert "What is being rejected" in page
    assert "it can be rejected" in page
    assert "Before you cancel" not in page and "CANCELLED" not in page


def test_bulk_cancel_says_what_became_of_each_invoice(paid_order, cs_user, admin_client_for):
    unpaid = make_order()
    paid = paid_order("stripe", 45000)
    client = admin_client_for(cs_user)
    selected = {"action": "cancel_orders", "_selected_action": [unpaid.pk, paid.pk]}

    confirm = client.post(reverse(CHANGELIST), selected).content.decode()
    assert f"Before you cancel {unpaid.number}" in confirm
    assert f"Before you cancel {paid.number}" in confirm
    assert "does not refund it" in confirm

    result = confirm_action(
        client,
        reverse(CHANGELIST),
        {**selected, "confirm": "yes", "reason": "Duplicates"},
        follow=True,
    ).content.decode()

    assert (
        f"{unpaid.number} is now Cancelled. Its unpaid invoice {unpaid.invoice.number} was closed."
        in result
    )
    assert (
        f"{paid.number} is now Cancelled. Its invoice {paid.invoice.number} stays paid: no money "
        "moved." in result
    )
    assert "done." not in result
    assert Order.objects.get(pk=paid.pk).invoice.status == InvoiceStatus.PAID


def test_bulk_refund_shows_the_total_by_gateway_and_reports_each_order(
    paid_order, cs_user, admin_client_for, gateways
):
    stripe_order = paid_order("stripe", 45000)
    nmi_order = paid_order("nmi", 12000)
    unpaid = make_order()
    client = admin_client_for(cs_user)
    selected = {
        "action": "refund_orders",
        "_selected_action": [stripe_order.pk, nmi_order.pk, unpaid.pk],
    }

    confirm = client.post(reverse(CHANGELIST), selected).content.decode()
    assert "To be refunded: NMI $120.00, Stripe $450.00." in confirm
    assert f"Refused as things stand (see BLOCKED below): {unpaid.number}." in confirm
    assert confirm.count("The app will refuse this for") == 1
    assert f"The app will refuse this for {unpaid.number} as things stand" in confirm
    for order in (stripe_order, nmi_order, unpaid):
        assert f"Before you refund {order.number}" in confirm
    assert not Payment.objects.filter(kind="REFUND").exists()

    result = confirm_action(
        client,
        reverse(CHANGELIST),
        {**selected, "confirm": "yes", "reason": "Clinic closed"},
        follow=True,
    ).content.decode()

    assert (
        f"{stripe_order.number}: refunded $450.00 through Stripe. The order is now Refunded and "
        "locked." in result
    )
    assert f"{nmi_order.number}: refunded $120.00 through NMI." in result
    assert f"{unpaid.number}: refused." in result
    statuses = dict(Order.objects.values_list("pk", "status"))
    assert statuses[stripe_order.pk] == statuses[nmi_order.pk] == OrderStatus.REFUNDED
    assert statuses[unpaid.pk] == OrderStatus.PENDING


def test_the_bulk_refund_needs_the_refund_permission(paid_order, medical_ops, admin_client_for):
    order = paid_order("stripe")
    response = confirm_action(
        admin_client_for(medical_ops),
        reverse(CHANGELIST),
        {
            "action": "refund_orders",
            "_selected_action": [order.pk],
            "confirm": "yes",
            "reason": "Patient asked",
        },
        follow=True,
    )
    assert "Your role does not allow this action" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PROCESSING


def test_an_ordered_product_keeps_what_its_orders_read(
    billing_admin, superuser, admin_client_for, gateways
):
    ordered = ProductFactory(requires_labs=True, price_cents=5000, name="Lab panel")
    order = make_order(products=[ordered])
    fresh = ProductFactory()
    client = admin_client_for(billing_admin)

    page = client.get(reverse("admin:orders_product_change", args=[ordered.pk])).content.decode()
    assert 'name="price_cents"' in page
    for field in ("kind", "requires_intake", "requires_labs", "requires_prescription"):
        assert f'name="{field}"' not in page
    page = client.get(reverse("admin:orders_product_change", args=[fresh.pk])).content.decode()
    assert 'name="requires_labs"' in page

    client.post(
        reverse("admin:orders_product_change", args=[ordered.pk]),
        {
            "name": "Lab panel (new price)",
            "price_cents": 7000,
            "currency": "usd",
            "active": "on",
            "refund_policy": "",
            "requires_labs": "",  # ignored: read-only once ordered
        },
    )
    ordered.refresh_from_db()
    assert (ordered.price_cents, ordered.requires_labs) == (7000, True)
    item = OrderItem.objects.get(order=order)
    assert (item.unit_price_cents, item.description) == (5000, "Lab panel")
    superuser_client = admin_client_for(superuser)
    delete = reverse("admin:orders_product_delete", args=[ordered.pk])
    assert superuser_client.post(delete, {"post": "yes"}).status_code == 403
    assert Product.objects.filter(pk=ordered.pk).exists()


def test_the_order_page_counts_failed_charges(gateways, system, cs_user, admin_client_for):
    payments.set_active_gateway(gateway="stripe", actor=system, reason="test setup")
    patient = PatientFactory()
    card = payments.save_card(patient=patient, gateway="stripe", token=DECLINED_CARD, actor=system)
    order = make_order(patient=patient)
    for _ in range(2):
        with pytest.raises(payments.PaymentRequired):
            payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=system)

    page = admin_client_for(cs_user).get(_page(order)).content.decode()

    assert '<strong id="failed-charges">2 failed charges</strong>' in page
