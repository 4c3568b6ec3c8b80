"""The order page's tools: each opens a confirmation page (the guide's checklist, a required
reason, what will and will not happen), then calls the same service as every other door."""

from decimal import Decimal, InvalidOperation

from django import forms

from billing.order_status import transition_order
from billing.refunds import refund_order
from emr.kernel.admin_actions import ReasonForm
from emr.kernel.admin_pages import RecordTool
from emr.kernel.money import format_cents
from emr.support.preflight import Action, order_preflight
from integrations.beluga.services import cancel_visit
from integrations.beluga.states import OPEN_VISIT_STATUSES
from integrations.pharmacy.services import void_pharmacy_order, voidable_pharmacy_order
from orders.states import OrderStatus


def _status_tool(name, label, consequence, target, checklist=None) -> RecordTool:
    def run(order, *, actor, reason, data) -> str:
        transition_order(order=order, target=target, actor=actor, reason=reason)
        return f"{order.number} is now {OrderStatus(target).label}."

    return RecordTool(
        name,
        label,
        "orders.change_order_status",
        consequence,
        run,
        offered=lambda order: order.transitions.can(order.status, target),
        checklist=(lambda order: order_preflight(order, checklist)) if checklist else None,
    )


def _refund(order, *, actor, reason, data) -> str:
    refund = refund_order(order=order, actor=actor, reason=reason, amount_cents=data["amount"])
    amount = format_cents(refund.amount_cents, refund.currency)
    return (
        f"Refunded {amount} through {refund.get_gateway_display()} "
        f"({refund.get_status_display().lower()})."
    )


def _cancel_visit(order, *, actor, reason, data) -> str:
    cancel_visit(visit=order.beluga_visit, actor=actor, reason=reason)
    return "Beluga visit cancelled. The order itself did not change."


def _void_pharmacy(order, *, actor, reason, data) -> str:
    # Between the page and the click the pharmacy may have shipped: the void service then
    # answers with its refusal, which the page shows.
    pharmacy_order = voidable_pharmacy_order(order) or order.pharmacy_orders.first()
    void_pharmacy_order(pharmacy_order=pharmacy_order, actor=actor, reason=reason)
    return "Pharmacy order voided. This is not a refund."


def _has_open_visit(order) -> bool:
    visit = getattr(order, "beluga_visit", None)
    return visit is not None and visit.status in OPEN_VISIT_STATUSES


class RefundForm(ReasonForm):
    amount = forms.CharField(
        required=False,
        label="Amount to refund",
        help_text="In dollars, e.g. 25.00. Leave empty to refund everything that remains.",
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
        _refund,
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
        "The order becomes REJECTED. No money moves.",
        OrderStatus.REJECTED,
        Action.CANCEL,
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
