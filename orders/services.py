"""Every write to an order goes through here: one function per action, shared by all doors.

Each public function takes keyword-only arguments and an `actor`, runs in one transaction,
locks the order row while it decides, validates before writing, and leaves an audit stamp
(who, through which door, why) on every history row it causes.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Prefetch, prefetch_related_objects
from django.utils import timezone

from billing.invoices import set_invoice_status
from billing.models import Invoice, Payment, RefundPolicyVersion
from billing.states import InvoiceStatus, PaymentKind, PaymentStatus
from emr.documents import documents_signed
from emr.kernel.actors import Actor
from emr.kernel.errors import InvalidInput, StateConflict
from emr.kernel.events import publish
from emr.kernel.numbering import next_number
from emr.kernel.services import require_reason, service_transaction
from emr.models import Patient
from emr.workflows.outbox import emit
from emr.workflows.payloads import status_change_payload
from orders.events import OrderProgressed
from orders.models import Order, OrderItem, Product
from orders.recalculation import OrderFacts, derive_status
from orders.states import (
    ACTION_ONLY,
    PAYMENT_ONLY_KINDS,
    WAITING_FOR_PAYMENT,
    OrderKind,
    OrderStatus,
)

# The moves a person makes by hand. In-progress statuses are recalculated from facts, and
# REFUNDED is reached only through the refund flow, which moves the money first.
STAFF_MOVES = frozenset(
    {
        OrderStatus.CANCELLED,
        OrderStatus.REJECTED,
        OrderStatus.RETURNED,
        OrderStatus.SHIPPED,
        OrderStatus.COMPLETED,
    }
)


@dataclass(frozen=True)
class OrderLine:
    product: Product
    quantity: int
    # The price agreed for this sale (a subscription plan's price); the product's by default.
    unit_price_cents: int | None = None

    @property
    def price_cents(self) -> int:
        return self.product.price_cents if self.unit_price_cents is None else self.unit_price_cents


def create_order(
    *,
    patient: Patient,
    lines: Sequence[OrderLine],
    actor: Actor,
    kind: OrderKind = OrderKind.MANUAL,
    subscription=None,
    reason: str = "Order created",
    recovery_next_retry_at=None,
) -> Order:
    """A new order, PENDING, with its invoice SENT for the total (`order.invoice`)."""
    _validate_lines(lines)
    currency = lines[0].product.currency
    with service_transaction(actor, reason=reason, savepoints=False):
        terms = _terms_in_force(lines)
        items = [
            OrderItem(
                product=line.product,
                description=line.product.name,
                quantity=line.quantity,
                unit_price_cents=line.price_cents,
                total_cents=line.price_cents * line.quantity,
                refund_policy_version=terms.get(line.product.refund_policy_id),
            )
            for line in lines
        ]
        order = Order.objects.create(
            number=next_number("ORD"),
            patient=patient,
            kind=kind,
            currency=currency,
            total_cents=sum(item.total_cents for item in items),
            subscription=subscription,
            created_by=actor.user if actor.user and actor.user.is_staff else None,
            recovery_next_retry_at=recovery_next_retry_at,
        )
        # Saved one by one (not bulk_create) so each item gets its history row.
        for item in items:
            item.order = order
            item.save()
        order.invoice = Invoice.objects.create(
            number=next_number("INV"),
            order=order,
            amount_cents=order.total_cents,
            currency=currency,
        )
        emit("order.created", subject=order, payload=status_change_payload(order, None))
    return order


def _terms_in_force(lines: Sequence[OrderLine]) -> dict[int, RefundPolicyVersion]:
    """policy id -> its newest version, for the products ordered: what the patient buys under."""
    policy_ids = {line.product.refund_policy_id for line in lines} - {None}
    if not policy_ids:
        return {}
    newest = {}
    for version in RefundPolicyVersion.objects.filter(policy_id__in=policy_ids).order_by(
        "policy_id", "-version"
    ):
        newest.setdefault(version.policy_id, version)
    return newest


def _validate_lines(lines: Sequence[OrderLine]) -> None:
    if not lines:
        raise InvalidInput("An order needs at least one item.", code="order.no_items")
    for line in lines:
        if isinstance(line.quantity, bool) or not isinstance(line.quantity, int):
            raise InvalidInput("Quantity must be a whole number.", code="order.invalid_quantity")
        if line.quantity < 1:
            raise InvalidInput("Quantity must be at least 1.", code="order.invalid_quantity")
        price = line.unit_price_cents
        if price is not None and (
            isinstance(price, bool) or not isinstance(price, int) or price < 0
        ):
            raise InvalidInput(
                "A price must be a whole number of cents, not negative.", code="order.invalid_price"
            )
        if not line.product.active:
            raise InvalidInput(
                f"{line.product.name} is no longer sold and cannot be ordered.",
                code="order.product_inactive",
            )
    if len({line.product.currency for line in lines}) > 1:
        raise InvalidInput(
            "All items of one order must be priced in the same currency.",
            code="order.mixed_currency",
        )


def change_status(*, order: Order, target: str, actor: Actor, reason: str) -> Order:
    """A staff move: cancel, reject, return, mark shipped or completed.

    A refunded order is locked: that is the answer to every target, before any other.
    """
    reason = require_reason(reason, prompt="Say why the status changes")
    with service_transaction(actor, reason=reason):
        order = lock_order(order.pk)
        if order.is_locked:
            order.transitions.check(order.status, target)
        _check_staff_move(target)
        set_status(order, target)
        if target in {OrderStatus.CANCELLED, OrderStatus.REJECTED}:
            _close_unpaid_invoice(order)
    return order


def _check_staff_move(target: str) -> None:
    if target == OrderStatus.REFUNDED:
        raise StateConflict(
            "Refunding moves money: use the refund action, which refunds through the original "
            "gateway and then marks the order REFUNDED.",
            code="order.refund_required",
        )
    if target not in STAFF_MOVES:
        label = OrderStatus(target).label if target in OrderStatus.values else target
        raise InvalidInput(
            f"{label} is calculated from the order's payment, intake, prescription and "
            "fulfilment; it cannot be set by hand.",
            code="order.not_a_staff_move",
        )


def lock_order(order_id: int, *, with_invoice: bool = False) -> Order:
    """The order row, locked until the surrounding transaction ends. `with_invoice` reads its
    invoice in the same statement (not locked: lock it when it is changed)."""
    orders = Order.objects.select_for_update(of=("self",))
    if with_invoice:
        orders = orders.select_related("invoice")
    return orders.get(pk=order_id)


# Besides `order.updated`, a move to one of these statuses fires the status's own event.
STATUS_EVENTS = {
    OrderStatus.CANCELLED: "order.cancelled",
    OrderStatus.REJECTED: "order.rejected",
    OrderStatus.RETURNED: "order.returned",
    OrderStatus.SHIPPED: "order.shipped",
    OrderStatus.COMPLETED: "order.completed",
    OrderStatus.REFUNDED: "order.refunded",
}


def set_status(order: Order, target: str) -> Order:
    """Move a locked order along its transition table, recording the fact the move implies.

    Every status change goes through here, so here it is announced, once, in the transaction
    of the change: the target's own event (if it has one), then `order.updated`, both saying
    from what status to what.
    """
    previous_status = move_status(order, target)
    announce_status(order, previous_status)
    return order


def move_status(order: Order, target: str) -> str:
    """The first half of `set_status`: check the move, record it (one save, with whatever else
    the caller changed on the row) and return the status it moved from. The caller announces
    it with `announce_status` in the same transaction."""
    previous_status = order.status
    order.transitions.check(previous_status, target)
    order.status = target
    now = timezone.now()
    if target == OrderStatus.SHIPPED and order.shipped_at is None:
        order.shipped_at = now
    elif target == OrderStatus.COMPLETED and order.completed_at is None:
        order.completed_at = now
    order.save()
    return previous_status


def announce_status(order: Order, previous_status: str) -> None:
    """The target's own event (if it has one), then `order.updated`, both saying from what
    status to what."""
    payload = status_change_payload(order, previous_status)
    if order.status in STATUS_EVENTS:
        emit(STATUS_EVENTS[order.status], subject=order, payload=payload)
    emit("order.updated", subject=order, payload=payload)


def _close_unpaid_invoice(order: Order) -> None:
    # A closed order should not keep asking the patient for money. A paid invoice stays as it
    # is: cancelling never moves money, and the refund is a separate, deliberate action.
    invoice = Invoice.objects.select_for_update().filter(order=order).first()
    if invoice is not None and invoice.status == InvoiceStatus.SENT:
        set_invoice_status(invoice, InvoiceStatus.CANCELLED)


# Fulfilment facts staff or integrations report, and the order field each one sets.
FACT_FIELDS = {
    "lab_requisition_sent": "lab_requisition_sent_at",
    "lab_results_received": "lab_results_received_at",
    "sent_to_pharmacy": "sent_to_pharmacy_at",
    "shipped": "shipped_at",
}


def record_fact(*, order: Order, fact: str, actor: Actor, reason: str) -> Order:
    """Record that a fulfilment fact happened (once) and recalculate the status from it."""
    if fact not in FACT_FIELDS:
        raise InvalidInput(f"Unknown fulfilment fact {fact!r}.", code="order.unknown_fact")
    with service_transaction(actor, reason=reason):
        order = lock_order(order.pk)
        field = FACT_FIELDS[fact]
        if getattr(order, field) is None:
            setattr(order, field, timezone.now())
            order.save(update_fields=[field, "updated_at"])
        return recalculate_status(order=order, actor=actor, reason=reason)


def recalculate_status(*, order: Order, actor: Actor, reason: str) -> Order:
    """Derive the in-progress status from the facts; action-set statuses are left alone."""
    with service_transaction(actor, reason=reason):
        return recalculate_locked(lock_order(order.pk), actor=actor)


def recalculate_locked(order: Order, *, actor: Actor, invoice: Invoice | None = None) -> Order:
    """`recalculate_status` for a caller that holds the order's lock in its own service
    transaction (its reason stamps the history): the order is not locked or read again.
    `invoice`, when the caller has it in hand, is the order's invoice as it is now."""
    if order.status in ACTION_ONLY:
        return order
    target = derive_status(collect_facts(order, invoice=invoice))
    if target != order.status:
        previous_status = order.status
        set_status(order, target)
        publish(OrderProgressed(order=order, previous_status=previous_status, actor=actor))
    return order


def items_of(order: Order) -> list[OrderItem]:
    """The order's items with their products, read once per order object: whoever asks next
    in the same change (a reaction to the payment, say) finds them in `order.items.all()`."""
    prefetch_related_objects(
        [order], Prefetch("items", queryset=OrderItem.objects.select_related("product"))
    )
    return list(order.items.all())


def collect_facts(order: Order, *, invoice: Invoice | None = None) -> OrderFacts:
    # A payment-only order (a financed recovery cycle, a payoff) ships nothing: the treatment it
    # pays for went out with an earlier order, so no intake, lab or prescription waits for it.
    products = [] if order.kind in PAYMENT_ONLY_KINDS else [i.product for i in items_of(order)]
    if invoice is None:
        invoice = Invoice.objects.filter(order=order).first()
    paid = invoice is not None and invoice.status == InvoiceStatus.PAID
    intakes = list(order.intakes.all())
    documents_required, all_signed = documents_signed(order)
    return OrderFacts(
        paid=paid,
        # Only an unpaid order's status depends on it (derive_status): not read for a paid one.
        payment_failed=not paid
        and (
            order.recovery_status in WAITING_FOR_PAYMENT
            or Payment.objects.filter(
                invoice=invoice, kind=PaymentKind.CHARGE, status=PaymentStatus.FAILED
            ).exists()
        ),
        intake_required=any(product.requires_intake for product in products),
        intake_complete=bool(intakes) and all(intake.is_complete for intake in intakes),
        documents_required=documents_required,
        documents_signed=all_signed,
        labs_required=any(product.requires_labs for product in products),
        requisition_sent=order.lab_requisition_sent_at is not None,
        results_received=order.lab_results_received_at is not None,
        prescription_required=any(product.requires_prescription for product in products),
        prescription_written=order.prescriptions.exists(),
        sent_to_pharmacy=order.sent_to_pharmacy_at is not None,
        shipped=order.shipped_at is not None,
        completed=order.completed_at is not None,
    )
