"""The guide's "What CS should check before refunding / canceling", computed from the data.

One read-model for the admin's confirmation pages and `GET /api/v1/orders/{id}/preflight/`.
Each item is ok, warn (go ahead, but know this), blocked (the app will refuse) or info, with a
sentence; `will_not_do` lists what the action does not do automatically, from the guide.
The loader issues a fixed number of queries, whatever the order's history.
"""

import enum
from dataclasses import dataclass, field

from billing.models import Invoice, Payment
from billing.refunds import RefundAssessment, Refusal, assess_refund
from billing.states import Gateway, InvoiceStatus
from emr.kernel.money import format_cents
from integrations.beluga.states import OPEN_VISIT_STATUSES
from integrations.pharmacy.states import PharmacyOrderStatus
from orders.models import Order
from orders.states import OrderStatus
from subscriptions.states import OPEN_SWITCH_STATUSES, SubscriptionStatus


class Action(enum.StrEnum):
    REFUND = "refund"
    CANCEL = "cancel"


class Check(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    BLOCKED = "blocked"
    INFO = "info"


@dataclass(frozen=True)
class Item:
    key: str
    label: str
    state: Check
    sentence: str


@dataclass(frozen=True)
class Preflight:
    action: Action
    order_number: str
    items: list[Item]
    will_not_do: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return any(item.state == Check.BLOCKED for item in self.items)


WILL_NOT_DO = {
    Action.REFUND: [
        "cancel the patient's subscription",
        "cancel a Beluga visit",
        "void a pharmacy order",
        "stop a shipment already in progress",
        "reverse an intake decision",
        "undo prescription records",
        "cancel a replacement subscription from a switch",
    ],
    Action.CANCEL: [
        "refund the patient: cancellation alone returns no money",
        "cancel the patient's subscription",
        "cancel a Beluga visit",
        "void a pharmacy order",
        "stop a shipment already in progress",
    ],
}

ACTIVE_PHARMACY = {PharmacyOrderStatus.SUBMITTED, PharmacyOrderStatus.SHIPPED}


def load_order(order_id: int) -> Order:
    """The order with everything the checklists read, in a fixed number of queries."""
    return (
        Order.objects.select_related("patient", "invoice", "subscription__plan", "beluga_visit")
        .prefetch_related(
            "invoice__payments__refunds",
            "pharmacy_orders",
            "prescriptions",
            "refund_attempts",
        )
        .get(pk=order_id)
    )


def order_preflight(order: Order, action: Action) -> Preflight:
    order = load_order(order.pk)
    checks = _refund_items if action == Action.REFUND else _cancel_items
    return Preflight(
        action=action,
        order_number=order.number,
        items=checks(order),
        will_not_do=WILL_NOT_DO[action],
    )


def _invoice(order: Order) -> Invoice | None:
    # A missing reverse one-to-one raises a subclass of AttributeError: getattr's default applies.
    return getattr(order, "invoice", None)


def _refund_items(order: Order) -> list[Item]:
    assessment = assess_refund(order)
    # Each line shows its first refusal, as the refund flow would raise it.
    refused: dict[str, Refusal] = {}
    for refusal in assessment.refusals:
        refused.setdefault(refusal.check, refusal)
    payment = assessment.charge
    return [
        _who(order),
        _order_status_for_refund(order, refused.get("order_status"), payment),
        _invoice_item(assessment.invoice, refused.get("invoice"), payment),
        _payment_item(payment, refused.get("payment")),
        _gateway_item(payment, refused.get("gateway")),
        _transaction_item(payment, refused.get("transaction_id")),
        _remaining_item(assessment, refused.get("remaining")),
        _shipment_item(order, Action.REFUND),
        _pharmacy_item(order, Action.REFUND),
        _beluga_item(order, Action.REFUND),
        _prescription_item(order, Action.REFUND),
        _subscription_item(order, Action.REFUND),
        Item(
            "follow_up",
            "Follow-up",
            Check.INFO,
            "Decide whether this refund should also lead to cancelling the subscription, the "
            "Beluga visit or the pharmacy order; each is a separate action.",
        ),
    ]


def _cancel_items(order: Order) -> list[Item]:
    invoice = _invoice(order)
    return [
        Item(
            "what",
            "What is being cancelled",
            Check.INFO,
            "This cancels the order (operational status CANCELLED). A subscription, Beluga "
            "visit or pharmacy order is cancelled with its own tool.",
        ),
        _who(order),
        _order_status_for_cancel(order),
        _paid_item(invoice),
        _shipment_item(order, Action.CANCEL),
        _prescription_item(order, Action.CANCEL),
        _beluga_item(order, Action.CANCEL),
        _pharmacy_item(order, Action.CANCEL),
        _subscription_item(order, Action.CANCEL),
        _recovery_item(order),
        Item(
            "dose_change",
            "Pending dose change",
            Check.INFO,
            "Dose changes are not tracked in this app: check the chart notes before cancelling.",
        ),
        Item(
            "refund_expectation",
            "Patient's refund expectation",
            Check.INFO,
            "Ask whether the patient expects money back: cancelling alone returns nothing.",
        ),
    ]


def _who(order: Order) -> Item:
    patient = order.patient
    return Item(
        "order",
        "Order",
        Check.INFO,
        f"{order.number} for {patient.full_name} ({patient.email}), "
        f"{format_cents(order.total_cents, order.currency)}.",
    )


def _order_status_for_cancel(order: Order) -> Item:
    label = order.get_status_display()
    if order.transitions.can(order.status, OrderStatus.CANCELLED):
        return Item("order_status", "Order status", Check.OK, f"{label}: it can be cancelled.")
    if order.shipped_at or order.status in {OrderStatus.SHIPPED, OrderStatus.COMPLETED}:
        sentence = (
            f"{label}: the order has already shipped. Cancellation may no longer be possible; "
            "this may be a return/refund policy case."
        )
    else:
        sentence = f"{label}: an order in this status cannot be cancelled."
    return Item("order_status", "Order status", Check.BLOCKED, sentence)


# The checklist's sentence for each refusal of the refund flow, by (line, code): shorter than
# the flow's own, which CS reads if they go ahead. A refusal not listed shows the flow's.
REFUSAL_SENTENCES = {
    ("order_status", "refund.already_refunded"): (
        "Already refunded: the order is locked and nothing is left to refund."
    ),
    ("invoice", "refund.no_invoice"): (
        "The order has no invoice, so there is no payment to refund. Escalate to billing/admin "
        "operations."
    ),
    ("payment", "refund.no_successful_payment"): (
        "No successful payment: the app cannot refund this order automatically. Check the "
        "payment records and the gateway dashboard, then escalate."
    ),
    ("gateway", "refund.gateway_not_configured"): (
        "Paid through {gateway}, which is not configured now: the refund would fail."
    ),
    ("gateway", "refund.gateway_auth_failed"): (
        "Paid through another {gateway} account than the one configured now (the credentials "
        "changed): the app will not refund it. Escalate to billing/admin."
    ),
    ("transaction_id", "refund.no_transaction_id"): (
        "The payment has no gateway transaction id: the gateway cannot be asked to refund it."
    ),
    ("remaining", "refund.in_progress"): (
        "A refund is already in progress; wait for it before refunding again."
    ),
    ("remaining", "refund.already_refunded"): "Nothing is left to refund.",
}


def _refused(key: str, label: str, refusal: Refusal, payment: Payment | None) -> Item:
    sentence = REFUSAL_SENTENCES.get((key, refusal.code))
    if sentence is None:
        sentence = refusal.error.detail
    elif payment is not None:
        sentence = sentence.format(gateway=Gateway(payment.gateway).label)
    return Item(key, label, Check.BLOCKED, sentence)


def _order_status_for_refund(
    order: Order, refusal: Refusal | None, payment: Payment | None
) -> Item:
    if refusal is not None:
        return _refused("order_status", "Order status", refusal, payment)
    return Item("order_status", "Order status", Check.OK, f"{order.get_status_display()}.")


def _invoice_item(
    invoice: Invoice | None, refusal: Refusal | None, payment: Payment | None
) -> Item:
    if refusal is not None:
        return _refused("invoice", "Invoice", refusal, payment)
    return Item(
        "invoice", "Invoice", Check.OK, f"{invoice.number} is {invoice.get_status_display()}."
    )


def _payment_item(payment: Payment | None, refusal: Refusal | None) -> Item:
    if refusal is not None:
        return _refused("payment", "Original payment", refusal, payment)
    if payment is None:
        return Item("payment", "Original payment", Check.BLOCKED, "No payment to refund.")
    card = f", {payment.card_brand} ····{payment.card_last4}" if payment.card_last4 else ""
    return Item(
        "payment",
        "Original payment",
        Check.OK,
        f"{format_cents(payment.amount_cents, payment.currency)} succeeded on "
        f"{payment.created_at:%Y-%m-%d}{card}.",
    )


def _gateway_item(payment: Payment | None, refusal: Refusal | None) -> Item:
    if payment is None:
        return Item("gateway", "Original gateway", Check.INFO, "No payment, no gateway.")
    if refusal is not None:
        return _refused("gateway", "Original gateway", refusal, payment)
    label = Gateway(payment.gateway).label
    return Item(
        "gateway", "Original gateway", Check.OK, f"{label}: the refund goes back through {label}."
    )


def _transaction_item(payment: Payment | None, refusal: Refusal | None) -> Item:
    if refusal is not None:
        return _refused("transaction_id", "Transaction id", refusal, payment)
    if payment is None:
        return Item("transaction_id", "Transaction id", Check.INFO, "No payment.")
    return Item("transaction_id", "Transaction id", Check.OK, payment.transaction_id)


def _remaining_item(assessment: RefundAssessment, refusal: Refusal | None) -> Item:
    payment = assessment.charge
    if payment is None:
        return Item("remaining", "Refundable", Check.INFO, "Nothing was paid.")
    if refusal is not None:
        return _refused("remaining", "Refundable", refusal, payment)
    return Item(
        "remaining",
        "Refundable",
        Check.OK,
        f"{format_cents(assessment.remaining_cents, payment.currency)} of "
        f"{format_cents(payment.amount_cents, payment.currency)} can still be refunded.",
    )


def _paid_item(invoice: Invoice | None) -> Item:
    if invoice is not None and invoice.status == InvoiceStatus.PAID:
        return Item(
            "payment",
            "Payment",
            Check.WARN,
            f"{invoice.number} is paid ({format_cents(invoice.amount_cents, invoice.currency)}). "
            "Cancelling does not refund it: if the patient needs money back, refund as well.",
        )
    return Item(
        "payment",
        "Payment",
        Check.OK,
        "Nothing was paid; the open invoice is closed with the order.",
    )


def _shipment_item(order: Order, action: Action) -> Item:
    if order.shipped_at is None:
        return Item("shipment", "Shipment", Check.OK, "Not shipped.")
    consequence = (
        "refunding does not stop or recall it"
        if action == Action.REFUND
        else "cancelling is no longer possible"
    )
    return Item(
        "shipment",
        "Shipment",
        Check.WARN if action == Action.REFUND else Check.BLOCKED,
        f"Shipped on {order.shipped_at:%Y-%m-%d}: {consequence}.",
    )


def _pharmacy_item(order: Order, action: Action) -> Item:
    active = [p for p in order.pharmacy_orders.all() if p.status in ACTIVE_PHARMACY]
    if not active:
        return Item("pharmacy", "Pharmacy fulfilment", Check.OK, "No pharmacy fulfilment started.")
    pharmacy_order = active[0]
    verb = "Refunding" if action == Action.REFUND else "Cancelling the order"
    return Item(
        "pharmacy",
        "Pharmacy fulfilment",
        Check.WARN,
        f"{pharmacy_order.get_pharmacy_display()} order is "
        f"{pharmacy_order.get_status_display().lower()}. {verb} does not void it: void it "
        "(DispensePro, before shipment) or verify with the pharmacy.",
    )


def _beluga_item(order: Order, action: Action) -> Item:
    visit = getattr(order, "beluga_visit", None)
    if visit is None or visit.status not in OPEN_VISIT_STATUSES:
        state = visit.get_status_display() if visit else "none"
        return Item("beluga", "Beluga visit", Check.OK, f"No open Beluga visit ({state}).")
    verb = "Refunding" if action == Action.REFUND else "Cancelling the order"
    return Item(
        "beluga",
        "Beluga visit",
        Check.WARN,
        f"Beluga visit {visit.master_id} is {visit.get_status_display().lower()}. {verb} does "
        "not cancel it; cancel the visit separately if it should stop.",
    )


def _prescription_item(order: Order, action: Action) -> Item:
    prescriptions = list(order.prescriptions.all())
    if not prescriptions:
        return Item("prescription", "Prescription", Check.OK, "No prescription written.")
    verb = "Refunding" if action == Action.REFUND else "Cancelling"
    return Item(
        "prescription",
        "Prescription",
        Check.WARN,
        f"{prescriptions[0].medication} was prescribed. {verb} does not undo prescription records.",
    )


def _subscription_item(order: Order, action: Action) -> Item:
    subscription = order.subscription
    if subscription is None:
        return Item("subscription", "Subscription", Check.OK, "Not linked to a subscription.")
    if subscription.status in {SubscriptionStatus.CANCELLED, SubscriptionStatus.EXPIRED}:
        return Item(
            "subscription",
            "Subscription",
            Check.INFO,
            f"Linked to {subscription} ({subscription.get_status_display().lower()}).",
        )
    verb = "Refunding" if action == Action.REFUND else "Cancelling the order"
    return Item(
        "subscription",
        "Subscription",
        Check.WARN,
        f"Linked to {subscription} ({subscription.plan}, {subscription.get_status_display()}). "
        f"{verb} does not cancel it; future billing continues until it is cancelled.",
    )


def _recovery_item(order: Order) -> Item:
    subscription = order.subscription
    remaining = subscription.recovery_cycles_remaining if subscription else 0
    if not remaining:
        return Item("recovery", "Recovery balance", Check.OK, "No financed balance.")
    return Item(
        "recovery",
        "Recovery balance",
        Check.WARN,
        f"{remaining} financed payment(s) remain on {subscription}. The patient cannot cancel "
        "the subscription until they are paid; a cancellation can be scheduled after the last "
        "one, or billing/admin can review the account.",
    )


SUBSCRIPTION_WILL_NOT_DO = [
    "refund past orders",
    "cancel paid orders already created",
    "stop a shipment already in progress",
]


def subscription_cancel_preflight(subscription) -> Preflight:
    """The guide's cancel checks for a subscription (status, recovery balance, switch state,
    scheduled cancellation, unpaid recovery invoice)."""
    subscription = (
        type(subscription)
        .objects.select_related("plan", "patient")
        .prefetch_related("switches", "orders__invoice")
        .get(pk=subscription.pk)
    )
    items = [_subscription_status(subscription), _subscription_balance(subscription)]
    if subscription.has_scheduled_cancellation:
        items.append(
            Item(
                "scheduled_cancellation",
                "Scheduled cancellation",
                Check.INFO,
                "A cancellation is already scheduled after the final recovery payment; check its "
                "notes before telling the patient anything.",
            )
        )
    open_switches = [s for s in subscription.switches.all() if s.status in OPEN_SWITCH_STATUSES]
    if open_switches:
        items.append(
            Item(
                "switch",
                "Pending switch",
                Check.WARN,
                f"A plan switch is {open_switches[0].get_status_display().lower()}: cancelling "
                "does not withdraw it. Escalate switch questions to billing/admin.",
            )
        )
    unpaid = [
        o
        for o in subscription.orders.all()
        if getattr(o, "invoice", None) and o.invoice.status == InvoiceStatus.SENT
    ]
    if unpaid:
        items.append(
            Item(
                "recovery_invoice",
                "Unpaid invoice",
                Check.WARN,
                f"{unpaid[0].invoice.number} is still open. Check whether the patient only needs "
                "to update their card or pay it before cancelling; cancelling leaves it open.",
            )
        )
    return Preflight(
        action=Action.CANCEL,
        order_number=str(subscription),
        items=items,
        will_not_do=SUBSCRIPTION_WILL_NOT_DO,
    )


def _subscription_status(subscription) -> Item:
    if subscription.status == SubscriptionStatus.CANCELLED:
        return Item(
            "status",
            "Subscription status",
            Check.BLOCKED,
            "Already cancelled. Cancelled subscriptions cannot be reactivated.",
        )
    return Item(
        "status",
        "Subscription status",
        Check.OK,
        f"{subscription} ({subscription.plan}) is {subscription.get_status_display()}.",
    )


def _subscription_balance(subscription) -> Item:
    remaining = subscription.recovery_cycles_remaining
    if not remaining:
        return Item("recovery", "Recovery balance", Check.OK, "No financed balance.")
    return Item(
        "recovery",
        "Recovery balance",
        Check.WARN,
        f"{remaining} financed payment(s) remain "
        f"({format_cents(subscription.recovery_balance_cents, subscription.plan.currency)}). "
        "This subscription still has remaining financed balance. Cancellation can be scheduled "
        "after the remaining recovery payments are complete, or billing/admin can review the "
        "account.",
    )
