"""The order page's tools: each move opens a confirmation page (the guide's checklist, a required
reason, what will and will not happen), then calls the same service as every other door."""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from billing.order_status import transition_order
from billing.refunds import refund_order
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import DomainError
from emr.kernel.money import format_cents
from emr.support.links import escalation_url
from emr.support.preflight import Action, order_preflight
from integrations.beluga.services import cancel_visit
from integrations.beluga.states import OPEN_VISIT_STATUSES
from integrations.pharmacy.services import void_pharmacy_order, voidable_pharmacy_order
from orders.models import Order
from orders.states import OrderStatus


@dataclass(frozen=True)
class Move:
    name: str
    label: str
    permission: str
    consequence: str
    target: str = ""  # the order status it moves to, when it is a status change
    checklist: Action | None = None


MOVES = {
    move.name: move
    for move in [
        Move(
            "refund",
            "Refund…",
            "orders.refund_order",
            "Money goes back through the gateway that took the payment; when nothing refundable "
            "remains the invoice is cancelled and the order becomes REFUNDED and locked.",
            OrderStatus.REFUNDED,
            Action.REFUND,
        ),
        Move(
            "cancel",
            "Cancel order…",
            "orders.change_order_status",
            "The order becomes CANCELLED (operational only). An unpaid invoice is closed; a paid "
            "one stays paid: no money moves.",
            OrderStatus.CANCELLED,
            Action.CANCEL,
        ),
        Move(
            "reject",
            "Reject…",
            "orders.change_order_status",
            "The order becomes REJECTED. No money moves.",
            OrderStatus.REJECTED,
            Action.CANCEL,
        ),
        Move(
            "ship",
            "Mark shipped…",
            "orders.change_order_status",
            "The order becomes SHIPPED and can no longer be cancelled.",
            OrderStatus.SHIPPED,
        ),
        Move(
            "complete",
            "Mark completed…",
            "orders.change_order_status",
            "The order becomes COMPLETED.",
            OrderStatus.COMPLETED,
        ),
        Move(
            "return",
            "Mark returned…",
            "orders.change_order_status",
            "The order becomes RETURNED. A refund, if due, is a separate action.",
            OrderStatus.RETURNED,
        ),
        Move(
            "cancel_visit",
            "Cancel Beluga visit…",
            "beluga.cancel_belugavisit",
            "The visit is cancelled at Beluga and here. The order, payments, subscription and "
            "pharmacy order do not change.",
        ),
        Move(
            "void_pharmacy",
            "Void pharmacy order…",
            "pharmacy.void_pharmacyorder",
            "The DispensePro order is voided before shipment. This is not a refund and does not "
            "cancel the order or the subscription.",
        ),
    ]
}


class MoveForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 70}),
        help_text="Recorded in the audit history with your name.",
    )


class RefundForm(MoveForm):
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


def available_moves(order: Order, user) -> list[Move]:
    """The buttons the order page shows: allowed by the status table and the user's role."""
    moves = [
        move
        for move in MOVES.values()
        if move.target and order.transitions.can(order.status, move.target)
    ]
    visit = getattr(order, "beluga_visit", None)
    if visit is not None and visit.status in OPEN_VISIT_STATUSES:
        moves.append(MOVES["cancel_visit"])
    if voidable_pharmacy_order(order) is not None:
        moves.append(MOVES["void_pharmacy"])
    return [move for move in moves if user.has_perm(move.permission)]


def confirm_move(request, order_id: int, move_name: str, *, model_admin):
    order = get_object_or_404(Order, pk=order_id)
    move = MOVES.get(move_name)
    if move is None:
        raise PermissionDenied("Unknown action.")
    if not request.user.has_perm(move.permission):
        messages.error(
            request, "Your role does not allow this action. Ask a CS lead or billing admin."
        )
        return HttpResponseRedirect(_order_url(order))
    form_class = RefundForm if move.name == "refund" else MoveForm
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        return _run(request, order, move, form.cleaned_data)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"{move.label.rstrip('…')}: {order.number}",
        "order": order,
        "move": move,
        "form": form,
        "preflight": order_preflight(order, move.checklist) if move.checklist else None,
        "opts": Order._meta,
        "order_url": _order_url(order),
    }
    return TemplateResponse(request, "admin/orders/order/confirm_move.html", context)


def _run(request, order: Order, move: Move, data: dict):
    actor = Actor.staff(request.user, door=Door.ADMIN)
    reason = data["reason"]
    try:
        if move.name == "refund":
            refund = refund_order(
                order=order, actor=actor, reason=reason, amount_cents=data["amount"]
            )
            amount = format_cents(refund.amount_cents, refund.currency)
            done = (
                f"Refunded {amount} through {refund.get_gateway_display()} "
                f"({refund.get_status_display().lower()})."
            )
        elif move.name == "cancel_visit":
            cancel_visit(visit=order.beluga_visit, actor=actor, reason=reason)
            done = "Beluga visit cancelled. The order itself did not change."
        elif move.name == "void_pharmacy":
            void_pharmacy_order(
                pharmacy_order=voidable_pharmacy_order(order), actor=actor, reason=reason
            )
            done = "Pharmacy order voided. This is not a refund."
        else:
            transition_order(order=order, target=move.target, actor=actor, reason=reason)
            done = f"{order.number} is now {OrderStatus(move.target).label}."
    except DomainError as error:
        messages.error(request, refusal_message(order, error))
    else:
        messages.success(request, done)
    return HttpResponseRedirect(_order_url(order))


def refusal_message(order: Order, error: DomainError):
    return format_html(
        'Refused ({}): {} <a href="{}">Escalate with these details</a>',
        error.code,
        error.detail,
        escalation_url(order=order, message=f"{error.code}: {error.detail}"),
    )


def _order_url(order: Order) -> str:
    return reverse("admin:orders_order_change", args=[order.pk])
