"""The order page's tools: each opens a confirmation page (the guide's checklist, a required
reason, what will and will not happen), then calls the same service as every other door, and
answers with a sentence saying what became of the order (and of its money)."""

from decimal import Decimal, InvalidOperation

from django import forms

from billing.models import Invoice
from billing.order_status import transition_order
from billing.refunds import refund_order
from billing.states import InvoiceStatus, PaymentStatus
from emr.kernel.admin_actions import ReasonForm
from emr.kernel.admin_pages import RecordTool
from emr.kernel.money import format_cents
from emr.support.preflight import Action, order_preflight
from integrations.beluga.services import cancel_visit
from integrations.beluga.states import OPEN_VISIT_STATUSES
from integrations.pharmacy.services import void_pharmacy_order, voidable_pharmacy_order
from orders.models import Order
from orders.services import record_fact
from orders.states import ACTION_ONLY, OrderStatus


def _invoice_status(order: Order) -> str | None:
    return Invoice.objects.filter(order=order).values_list("status", flat=True).first()


def change_order_status(order: Order, *, actor, reason: str, target: str) -> str:
    """Move the order (not REFUNDED: that is the refund), and say what became of its invoice."""
    before = _invoice_status(order)
    order = transition_order(order=order, target=target, actor=actor, reason=reason)
    sentence = f"{order.number} is now {order.get_status_display()}."
    invoice = Invoice.objects.filter(order=order).first()
    if invoice is None or target not in {OrderStatus.CANCELLED, OrderStatus.REJECTED}:
        return sentence
    if invoice.status == InvoiceStatus.PAID:
        return (
            f"{sentence} Its invoice {invoice.number} stays paid: no money moved. Refund it "
            "separately if the patient should get money back."
        )
    if before == InvoiceStatus.SENT and invoice.status == InvoiceStatus.CANCELLED:
        return f"{sentence} Its unpaid invoice {invoice.number} was closed."
    return sentence


def refund(
    order: Order, *, actor, reason: str, amount_cents: int | None = None, override_reason: str = ""
) -> str:
    """Refund through the original gateway; say how much, where, and what is left."""
    payment = refund_order(
        order=order,
        actor=actor,
        reason=reason,
        amount_cents=amount_cents,
        override_reason=override_reason,
    )
    order = Order.objects.get(pk=order.pk)
    amount = format_cents(payment.amount_cents, payment.currency)
    gateway = payment.get_gateway_display()
    if payment.status == PaymentStatus.PENDING:
        moved = f"{order.number}: a refund of {amount} was sent to {gateway}; it is pending there."
    else:
        moved = f"{order.number}: refunded {amount} through {gateway}."
    if order.is_locked:
        return f"{moved} The order is now Refunded and locked."
    left = format_cents(order.total_cents - order.refunded_cents, order.currency)
    return f"{moved} The order stays {order.get_status_display()}; {left} can still be refunded."


def _status_tool(name, label, consequence, target, checklist=None) -> RecordTool:
    def run(order, *, actor, reason, data) -> str:
        return change_order_status(order, actor=actor, reason=reason, target=target)

    return RecordTool(
        name,
        label,
        "orders.change_order_status",
        consequence,
        run,
        offered=lambda order: order.transitions.can(order.status, target),
        checklist=(lambda order: order_preflight(order, checklist)) if checklist else None,
    )


# The lab facts CS records from the order page, and how a sentence names each.
LAB_FACTS = {
    "lab_requisition_sent": "Lab requisition sent",
    "lab_results_received": "Lab results received",
}


def _waits_for_labs(order: Order) -> bool:
    return (
        order.status not in ACTION_ONLY | {OrderStatus.SHIPPED, OrderStatus.COMPLETED}
        and order.items.filter(product__requires_labs=True).exists()
    )


def _fact_tool(name, label, fact, consequence, offered) -> RecordTool:
    def run(order, *, actor, reason, data) -> str:
        order = record_fact(order=order, fact=fact, actor=actor, reason=reason)
        return (
            f"{LAB_FACTS[fact]}: recorded for {order.number}. Recalculated from its facts, the "
            f"order is now {order.get_status_display()}."
        )

    return RecordTool(
        name,
        label,
        "orders.change_order_status",
        consequence,
        run,
        offered=lambda order: _waits_for_labs(order) and offered(order),
    )


def _refund_tool_run(order, *, actor, reason, data) -> str:
    return refund(
        order,
        actor=actor,
        reason=reason,
        amount_cents=data["amount"],
        override_reason=data["override_reason"],
    )


def _cancel_visit(order, *, actor, reason, data) -> str:
    visit = cancel_visit(visit=order.beluga_visit, actor=actor, reason=reason)
    return (
        f"Beluga visit {visit.master_id} of {order.number} is cancelled. The order, its "
        "payment and the subscription did not change."
    )


def _void_pharmacy(order, *, actor, reason, data) -> str:
    # Between the page and the click the pharmacy may have shipped: the void service then
    # answers with its refusal, which the page shows.
    pharmacy_order = voidable_pharmacy_order(order) or order.pharmacy_orders.first()
    void_pharmacy_order(pharmacy_order=pharmacy_order, actor=actor, reason=reason)
    return (
        f"Pharmacy order {pharmacy_order.reference} of {order.number} is voided. This is not a "
        "refund, and the order's status did not change."
    )


def _has_open_visit(order) -> bool:
    visit = getattr(order, "beluga_visit", None)
    return visit is not None and visit.status in OPEN_VISIT_STATUSES


class RefundForm(ReasonForm):
    amount = forms.CharField(
        required=False,
        label="Amount to refund",
        help_text="In dollars, e.g. 25.00. Leave empty to refund everything that remains.",
    )
    override_reason = forms.CharField(
        required=False,
        max_length=500,
        label="Override reason (only beyond the refund policy)",
        help_text="Needed only to refund more than the refund policy allows (see Refund "
        "policy above). Recorded with the refund and shown to billing admins.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_amount(self) -> int | None:
        text = self.cleaned_data["amount"].strip().lstrip("$")
        if not text:
            return None
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise forms.ValidationError("Enter an amount like 25.00.") from None
        if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
            raise forms.ValidationError("Enter a positive amount with at most two decimals.")
        return int(amount * 100)


ORDER_TOOLS = (
    RecordTool(
        "refund",
        "Refund…",
        "orders.refund_order",
        "Money goes back through the gateway that took the payment; when nothing refundable "
        "remains the invoice is cancelled and the order becomes REFUNDED and locked.",
        _refund_tool_run,
        form_class=RefundForm,
        offered=lambda order: order.transitions.can(order.status, OrderStatus.REFUNDED),
        checklist=lambda order: order_preflight(order, Action.REFUND),
    ),
    _status_tool(
        "cancel",
        "Cancel order…",
        "The order becomes CANCELLED (operational only). An unpaid invoice is closed; a paid "
        "one stays paid: no money moves.",
        OrderStatus.CANCELLED,
        Action.CANCEL,
    ),
    _status_tool(
        "reject",
        "Reject…",
        "The order becomes REJECTED: it will not go ahead. An unpaid invoice is closed; a paid "
        "one stays paid: no money moves.",
        OrderStatus.REJECTED,
        Action.REJECT,
    ),
    _fact_tool(
        "record_requisition_sent",
        "Record lab requisition sent…",
        "lab_requisition_sent",
        "Records that the lab requisition was sent, dated now, then recalculates the order's "
        "status from its facts: an order waiting for the requisition moves on to waiting for "
        "results.",
        offered=lambda order: order.lab_requisition_sent_at is None,
    ),
    _fact_tool(
        "record_results_received",
        "Record lab results received…",
        "lab_results_received",
        "Records that the lab results arrived, dated now, then recalculates the order's status "
        "from its facts: an order waiting for results moves on (to its prescription, if it "
        "needs one).",
        offered=lambda order: (
            order.lab_requisition_sent_at is not None and order.lab_results_received_at is None
        ),
    ),
    _status_tool(
        "ship",
        "Mark shipped…",
        "The order becomes SHIPPED and can no longer be cancelled.",
        OrderStatus.SHIPPED,
    ),
    _status_tool(
        "complete", "Mark completed…", "The order becomes COMPLETED.", OrderStatus.COMPLETED
    ),
    _status_tool(
        "return",
        "Mark returned…",
        "The order becomes RETURNED. A refund, if due, is a separate action.",
        OrderStatus.RETURNED,
    ),
    RecordTool(
        "cancel_visit",
        "Cancel Beluga visit…",
        "beluga.cancel_belugavisit",
        "The visit is cancelled at Beluga and here. The order, payments, subscription and "
        "pharmacy order do not change.",
        _cancel_visit,
        offered=_has_open_visit,
        checklist=lambda order: order_preflight(order, Action.CANCEL_VISIT),
    ),
    RecordTool(
        "void_pharmacy",
        "Void pharmacy order…",
        "pharmacy.void_pharmacyorder",
        "The DispensePro order is voided before shipment. This is not a refund and does not "
        "cancel the order or the subscription.",
        _void_pharmacy,
        offered=lambda order: voidable_pharmacy_order(order) is not None,
    ),
)
