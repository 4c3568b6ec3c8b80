"""The guide's "What CS should check before refunding / canceling", computed from the data.

One read-model for the admin's confirmation pages and `GET /api/v1/orders/{id}/preflight/`.
Each item is ok, warn (go ahead, but know this), blocked (the app will refuse) or info, with a
sentence; `will_not_do` lists what the action does not do automatically, from the guide.
The loader issues a fixed number of queries, whatever the order's history.
"""

import enum
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, Prefetch

from billing.models import GatewaySettings, Invoice, Payment, PaymentMethod
from billing.refund_quotes import RefundQuote, quote_refund
from billing.refunds import RefundAssessment, Refusal, assess_refund
from billing.states import Gateway, InvoiceStatus, PaymentStatus
from emr.kernel.money import format_cents
from integrations.beluga.services import refusal_to_cancel
from integrations.beluga.states import OPEN_VISIT_STATUSES
from integrations.gateways import registry
from integrations.pharmacy.states import PharmacyOrderStatus
from orders.models import Order, OrderItem
from orders.states import OrderStatus
from subscriptions.billing_cycle import live_subscriptions_paying_with
from subscriptions.models import Subscription
from subscriptions.states import (
    ENDED_STATUSES,
    LIVE_STATUSES,
    OPEN_SWITCH_STATUSES,
    SubscriptionStatus,
)


class Action(enum.StrEnum):
    REFUND = "refund"
    CANCEL = "cancel"
    REJECT = "reject"
    CANCEL_VISIT = "cancel_visit"
    REMOVE_CARD = "remove_card"
    SWITCH_GATEWAY = "switch_gateway"
    REJECT_INTAKE = "reject_intake"


# The checklists an order has (`?action=` of the API).
ORDER_ACTIONS = (Action.REFUND, Action.CANCEL, Action.REJECT, Action.CANCEL_VISIT)

HEADINGS = {
    Action.REFUND: "Before you refund {}",
    Action.CANCEL: "Before you cancel {}",
    Action.REJECT: "Before you reject {}",
    Action.CANCEL_VISIT: "Before you cancel the Beluga visit of {}",
    Action.REMOVE_CARD: "Before you remove {}",
    Action.SWITCH_GATEWAY: "Before you make {} the active gateway",
    Action.REJECT_INTAKE: "Before you reject the intake {}",
}

# How each sentence names the action it warns about.
DOING = {
    Action.REFUND: "Refunding",
    Action.CANCEL: "Cancelling the order",
    Action.REJECT: "Rejecting the order",
    Action.CANCEL_VISIT: "Cancelling the visit",
}


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
class QuotePanel:
    """The refund policy's quote as the refund page shows it above the checklist."""

    headline: str  # "The refund policy allows $240.00 now, of $360.00 still refundable."
    lines: tuple[str, ...]  # the quote's explanation, one sentence per item
    acceptance: str  # when and how the patient accepted the terms, or that they did not
    beyond_policy: bool  # refunding everything that remains needs an override reason


@dataclass(frozen=True)
class Preflight:
    action: Action
    subject: str  # what the action is done to: an order number, a subscription, a card
    items: list[Item]
    will_not_do: list[str] = field(default_factory=list)
    quote: QuotePanel | None = None  # refunds only

    @property
    def blocked(self) -> bool:
        return any(item.state == Check.BLOCKED for item in self.items)

    @property
    def heading(self) -> str:
        return HEADINGS[self.action].format(self.subject)


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
    Action.REJECT: [
        "refund the patient: rejection alone returns no money",
        "cancel the patient's subscription",
        "reject the patient's intake",
        "cancel a Beluga visit",
        "void a pharmacy order",
    ],
    Action.CANCEL_VISIT: [
        "refund the patient",
        "cancel the order",
        "cancel the subscription",
        "void pharmacy fulfilment",
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
            # What the refund policy quote reads: terms sold under, usage, acceptance.
            Prefetch(
                "items",
                queryset=OrderItem.objects.select_related(
                    "refund_policy_version__policy", "package"
                ).prefetch_related("package__redemptions"),
            ),
            "acknowledgements",
        )
        .get(pk=order_id)
    )


def order_preflight(order: Order, action: Action) -> Preflight:
    """The checklist before `action` (one of ORDER_ACTIONS) on `order`."""
    order = load_order(order.pk)
    quote = None
    if action == Action.REFUND:
        assessment = assess_refund(order)
        quote = quote_refund(order, remaining_cents=assessment.remaining_cents)
        items = _refund_items(order, assessment, quote)
    else:
        checks = {
            Action.CANCEL: _cancel_items,
            Action.REJECT: _reject_items,
            Action.CANCEL_VISIT: _visit_cancel_items,
        }[action]
        items = checks(order)
    return Preflight(
        action=action,
        subject=order.number,
        items=items,
        will_not_do=WILL_NOT_DO[action],
        quote=_quote_panel(quote) if quote is not None else None,
    )


def _quote_panel(quote: RefundQuote) -> QuotePanel:
    currency = quote.order.currency
    allowed = format_cents(quote.refundable_cents, currency)
    remaining = format_cents(quote.remaining_cents, currency)
    if not quote.governed:
        headline = f"No refund policy applies: {remaining} can be refunded."
    else:
        headline = f"The refund policy allows {allowed} now, of {remaining} still refundable."
    if not quote.governed:
        acceptance = ""
    elif quote.acknowledgements:
        first = min(quote.acknowledgements, key=lambda ack: ack.acknowledged_at)
        acceptance = (
            f"Terms accepted on {first.acknowledged_at:%Y-%m-%d %H:%M} UTC "
            f"({first.get_channel_display()}, recorded by {first.recorded_by_label})."
        )
    else:
        acceptance = "The patient has no recorded acceptance of these terms."
    return QuotePanel(
        headline=headline,
        lines=tuple(line for line in quote.explanation if line != acceptance),
        acceptance=acceptance,
        beyond_policy=quote.governed and quote.refundable_cents < quote.remaining_cents,
    )


def refund_summary(orders) -> list[str]:
    """What refunding each of `orders` in full would return, added up by gateway, and which of
    them the refund flow would refuse: the lines above a bulk refund's checklists."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    refused = []
    for order in orders:
        assessment = assess_refund(load_order(order.pk))
        if assessment.refusals or assessment.charge is None:
            refused.append(order.number)
            continue
        charge = assessment.charge
        totals[(charge.gateway, charge.currency)] += assessment.amount_cents
    lines = []
    if totals:
        amounts = ", ".join(
            f"{Gateway(gateway).label} {format_cents(cents, currency)}"
            for (gateway, currency), cents in sorted(totals.items())
        )
        lines.append(f"To be refunded: {amounts}.")
    else:
        lines.append("Nothing would be refunded: the app refuses every order selected.")
    if refused:
        lines.append(f"Refused as things stand (see BLOCKED below): {', '.join(refused)}.")
    return lines


def _invoice(order: Order) -> Invoice | None:
    # A missing reverse one-to-one raises a subclass of AttributeError: getattr's default applies.
    return getattr(order, "invoice", None)


def _refund_items(order: Order, assessment: RefundAssessment, quote: RefundQuote) -> list[Item]:
    # Each line shows its first refusal, as the refund flow would raise it.
    refused: dict[str, Refusal] = {}
    for refusal in assessment.refusals:
        refused.setdefault(refusal.check, refusal)
    payment = assessment.charge
    return [
        _who(order),
        _policy_item(order, quote),
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
    return [
        Item(
            "what",
            "What is being cancelled",
            Check.INFO,
            "This cancels the order (operational status CANCELLED). A subscription, Beluga "
            "visit or pharmacy order is cancelled with its own tool.",
        ),
        _who(order),
        _order_status_to_close(order, Action.CANCEL),
        _money_item(order, Action.CANCEL),
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
        _refund_expectation(Action.CANCEL),
    ]


def _reject_items(order: Order) -> list[Item]:
    return [
        Item(
            "what",
            "What is being rejected",
            Check.INFO,
            "This rejects the order (status REJECTED): it will not go ahead. Rejecting the "
            "patient's intake is a medical decision made on the intake (it also cancels linked "
            "subscriptions); use Needs Correction there when the patient should fix answers.",
        ),
        _who(order),
        _order_status_to_close(order, Action.REJECT),
        _money_item(order, Action.REJECT),
        _shipment_item(order, Action.REJECT),
        _prescription_item(order, Action.REJECT),
        _beluga_item(order, Action.REJECT),
        _pharmacy_item(order, Action.REJECT),
        _subscription_item(order, Action.REJECT),
        _refund_expectation(Action.REJECT),
    ]


def _visit_cancel_items(order: Order) -> list[Item]:
    # The guide: "Escalate before canceling Beluga if payment, prescription, fulfillment, or
    # subscription impact is unclear" — those four come right after the visit itself.
    return [
        Item(
            "what",
            "What is being cancelled",
            Check.INFO,
            "This cancels the Beluga visit only, at Beluga and here. The order, its payment, "
            "the subscription and any pharmacy order stay as they are.",
        ),
        _who(order),
        _visit_item(order),
        _money_item(order, Action.CANCEL_VISIT),
        _prescription_item(order, Action.CANCEL_VISIT),
        _pharmacy_item(order, Action.CANCEL_VISIT),
        _shipment_item(order, Action.CANCEL_VISIT),
        _subscription_item(order, Action.CANCEL_VISIT),
        Item(
            "escalate",
            "When unsure",
            Check.INFO,
            "If the payment, prescription, fulfilment or subscription impact is unclear, "
            "escalate before cancelling the visit.",
        ),
    ]


def _refund_expectation(action: Action) -> Item:
    return Item(
        "refund_expectation",
        "Patient's refund expectation",
        Check.INFO,
        f"Ask whether the patient expects money back: {DOING[action].lower()} alone returns "
        "nothing.",
    )


def _who(order: Order) -> Item:
    patient = order.patient
    return Item(
        "order",
        "Order",
        Check.INFO,
        f"{order.number} for {patient.full_name} ({patient.email}), "
        f"{format_cents(order.total_cents, order.currency)}.",
    )


# The status each closing action sets, and how its sentences name it.
CLOSES = {
    Action.CANCEL: (OrderStatus.CANCELLED, "cancelled", "Cancellation"),
    Action.REJECT: (OrderStatus.REJECTED, "rejected", "Rejection"),
}


def _order_status_to_close(order: Order, action: Action) -> Item:
    target, done, noun = CLOSES[action]
    label = order.get_status_display()
    if order.transitions.can(order.status, target):
        return Item("order_status", "Order status", Check.OK, f"{label}: it can be {done}.")
    if order.is_locked:
        sentence = "Refunded: the order is locked and its status can no longer change."
    elif order.shipped_at or order.status in {OrderStatus.SHIPPED, OrderStatus.COMPLETED}:
        sentence = (
            f"{label}: the order has already shipped. {noun} may no longer be possible; "
            "this may be a return/refund policy case."
        )
    else:
        sentence = f"{label}: an order in this status cannot be {done}."
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


def _policy_item(order: Order, quote: RefundQuote) -> Item:
    """The refund policy's quote: what the terms the patient bought under allow now."""
    sentence = " ".join(quote.explanation)
    if not quote.governed or quote.refundable_cents >= quote.remaining_cents:
        return Item("refund_policy", "Refund policy", Check.OK, sentence)
    allowed = format_cents(quote.refundable_cents, order.currency)
    return Item(
        "refund_policy",
        "Refund policy",
        Check.WARN,
        f"The policy allows {allowed} now. {sentence} Refunding more needs an override "
        "reason, which is recorded with the refund and counted for billing admins.",
    )


def _money_item(order: Order, action: Action) -> Item:
    """What the patient paid for this order and what of it is still held, from the payments
    themselves: a refund cancels the invoice, so its status alone cannot say."""
    assessment = assess_refund(order)
    invoice, charge = assessment.invoice, assessment.charge
    if charge is None:
        if invoice is None:
            sentence = "No invoice: nothing was paid."
        elif invoice.status == InvoiceStatus.SENT and action in CLOSES:
            sentence = f"Nothing was paid; the open invoice {invoice.number} closes with the order."
        elif invoice.status == InvoiceStatus.SENT:
            sentence = f"Nothing was paid; invoice {invoice.number} is open."
        else:
            state = invoice.get_status_display().lower()
            sentence = f"Nothing was paid; invoice {invoice.number} is {state}."
        return Item("payment", "Payment", Check.OK, sentence)
    currency = charge.currency
    paid = format_cents(charge.amount_cents, currency)
    gateway = Gateway(charge.gateway).label
    held = assessment.remaining_cents
    pending = sum(r.amount_cents for r in charge.refunds.all() if r.status == PaymentStatus.PENDING)
    refunded = format_cents(charge.amount_cents - held, currency)
    still_pending = f" ({format_cents(pending, currency)} of it still pending at the gateway)"
    refunded_part = f"{refunded} refunded{still_pending if pending else ''}"
    if held <= 0:
        return Item(
            "payment",
            "Payment",
            Check.OK,
            f"{paid} was paid through {gateway} and {refunded_part}: nothing is held for "
            "this order.",
        )
    doing = DOING[action]
    if held < charge.amount_cents:
        paid_so_far = (
            f"{paid} was paid through {gateway}, {refunded_part}: "
            f"{format_cents(held, currency)} is still held."
        )
    else:
        paid_so_far = f"{invoice.number} is paid ({paid} through {gateway})."
    return Item(
        "payment",
        "Payment",
        Check.WARN,
        f"{paid_so_far} {doing} does not refund it: if the patient needs money back, refund "
        "as well.",
    )


def _shipment_item(order: Order, action: Action) -> Item:
    if order.shipped_at is None:
        return Item("shipment", "Shipment", Check.OK, "Not shipped.")
    if action in CLOSES:
        state, consequence = Check.BLOCKED, f"{DOING[action].lower()} is no longer possible"
    else:
        state, consequence = Check.WARN, f"{DOING[action].lower()} does not stop or recall it"
    return Item(
        "shipment",
        "Shipment",
        state,
        f"Shipped on {order.shipped_at:%Y-%m-%d}: {consequence}.",
    )


def _pharmacy_item(order: Order, action: Action) -> Item:
    active = [p for p in order.pharmacy_orders.all() if p.status in ACTIVE_PHARMACY]
    if not active:
        return Item("pharmacy", "Pharmacy fulfilment", Check.OK, "No pharmacy fulfilment started.")
    pharmacy_order = active[0]
    verb = DOING[action]
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
    verb = DOING[action]
    return Item(
        "beluga",
        "Beluga visit",
        Check.WARN,
        f"Beluga visit {visit.master_id} is {visit.get_status_display().lower()}. {verb} does "
        "not cancel it; cancel the visit separately if it should stop.",
    )


def _visit_item(order: Order) -> Item:
    visit = getattr(order, "beluga_visit", None)
    if visit is None:
        return Item(
            "beluga", "Beluga visit", Check.BLOCKED, "This order has no Beluga visit to cancel."
        )
    name = f"Beluga visit {visit.master_id}" if visit.master_id else "The Beluga visit"
    state = visit.get_status_display().lower()
    if refusal := refusal_to_cancel(visit):
        return Item("beluga", "Beluga visit", Check.BLOCKED, f"{name} is {state}. {refusal.detail}")
    return Item("beluga", "Beluga visit", Check.OK, f"{name} is {state}: it can be cancelled.")


def _prescription_item(order: Order, action: Action) -> Item:
    prescriptions = list(order.prescriptions.all())
    if not prescriptions:
        return Item("prescription", "Prescription", Check.OK, "No prescription written.")
    verb = DOING[action]
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
    if subscription.status in ENDED_STATUSES:
        return Item(
            "subscription",
            "Subscription",
            Check.INFO,
            f"Linked to {subscription} ({subscription.get_status_display().lower()}).",
        )
    verb = DOING[action]
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
        subject=str(subscription),
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


CARD_WILL_NOT_DO = [
    "delete the card from the gateway's vault",
    "refund or cancel anything already charged to it",
]


def card_removal_preflight(card: PaymentMethod) -> Preflight:
    """Before removing a saved card: who it belongs to, what is charged to it, the default."""
    patient = card.patient
    used_by = list(live_subscriptions_paying_with(card)[:3])
    if used_by:
        names = ", ".join(f"{s} ({s.get_status_display().lower()})" for s in used_by)
        subscriptions = Item(
            "subscriptions",
            "Subscriptions",
            Check.BLOCKED,
            f"{names} is charged to this card: the app will not remove it while a live "
            "subscription uses it.",
        )
    else:
        subscriptions = Item(
            "subscriptions",
            "Subscriptions",
            Check.OK,
            "No active or paused subscription is charged to this card.",
        )
    if card.is_default:
        default = Item(
            "default",
            "Default card",
            Check.WARN,
            "This is the patient's default card: after removal no card is the default until "
            "another one is made the default.",
        )
    else:
        default = Item("default", "Default card", Check.OK, "Not the patient's default card.")
    return Preflight(
        action=Action.REMOVE_CARD,
        subject=str(card),
        items=[
            Item(
                "card",
                "Card",
                Check.INFO,
                f"{card} of {patient.full_name} ({patient.email}), expires "
                f"{card.exp_month:02d}/{card.exp_year}. It stays in the "
                f"{card.get_gateway_display()} vault; the app will not charge it again.",
            ),
            subscriptions,
            default,
        ],
        will_not_do=CARD_WILL_NOT_DO,
    )


GATEWAY_SWITCH_WILL_NOT_DO = [
    "move saved cards into the other gateway's vault",
    "change where existing payments are refunded",
]


def gateway_switch_preflight(target: str) -> Preflight:
    """Before making `target` the active gateway: is it configured here, and whose saved cards
    and live subscriptions it cannot charge."""
    label = Gateway(target).label
    active = GatewaySettings.load().active_gateway
    active_label = Gateway(active).label
    missing = registry.missing_settings(target)
    if missing:
        names = ", ".join(missing)
        configured = Item(
            "configured",
            "Configured on this server",
            Check.BLOCKED,
            f"No: {names} {'is' if len(missing) == 1 else 'are'} not set. The app refuses the "
            "switch until an administrator sets the gateway's credentials.",
        )
    else:
        names = ", ".join(registry.REQUIRED_SETTINGS[target])
        configured = Item(
            "configured", "Configured on this server", Check.OK, f"Yes: {names} are set."
        )
    cards = (
        PaymentMethod.objects.filter(removed_at__isnull=True)
        .exclude(gateway=target)
        .aggregate(cards=Count("id"), patients=Count("patient", distinct=True))
    )
    if cards["cards"]:
        stranded = Item(
            "cards",
            "Saved cards",
            Check.WARN,
            f"{cards['cards']} saved card(s) of {cards['patients']} patient(s) are in another "
            f"vault and cannot be charged through {label}: those patients must save their card "
            "again.",
        )
    else:
        stranded = Item(
            "cards", "Saved cards", Check.OK, f"Every saved card can be charged through {label}."
        )
    without_card = (
        Subscription.objects.filter(status__in=LIVE_STATUSES)
        .filter(
            ~Exists(
                PaymentMethod.objects.filter(
                    patient=OuterRef("patient"), gateway=target, removed_at__isnull=True
                )
            )
        )
        .count()
    )
    if without_card:
        renewals = Item(
            "subscriptions",
            "Live subscriptions",
            Check.WARN,
            f"{without_card} active or paused subscription(s) have no card saved with {label}: "
            "their next renewal will wait for the patient to add one (Needs a payment method).",
        )
    else:
        renewals = Item(
            "subscriptions",
            "Live subscriptions",
            Check.OK,
            f"Every active or paused subscription has a card saved with {label} to renew with.",
        )
    return Preflight(
        action=Action.SWITCH_GATEWAY,
        subject=label,
        items=[
            configured,
            Item(
                "charges",
                "New charges",
                Check.INFO,
                f"{active_label} is active now. After the switch, {label} takes every new "
                "charge, invoice payment, saved card and renewal.",
            ),
            stranded,
            renewals,
            Item(
                "refunds",
                "Refunds",
                Check.INFO,
                "Refunds still go back through the gateway of each original payment: keep "
                f"{active_label} configured while its payments may be refunded.",
            ),
        ],
        will_not_do=GATEWAY_SWITCH_WILL_NOT_DO,
    )


INTAKE_REJECTION_WILL_NOT_DO = [
    "refund money already paid: a refund is a separate, deliberate action",
    "stop or recall a shipment already on its way",
    "cancel a Beluga visit or void a pharmacy order",
    "undo prescription records",
]


def intake_rejection_preflight(intake) -> Preflight:
    """What rejecting an intake sets off, read from its order and subscription. A medical
    decision: nothing here blocks it."""
    order = intake.order
    if order is None:
        items = [Item("order", "Order", Check.INFO, "No order is linked: only the intake changes.")]
    else:
        items = [_intake_order_item(order), *_intake_money_and_subscription_items(order)]
    return Preflight(
        Action.REJECT_INTAKE, intake.questionnaire, items, list(INTAKE_REJECTION_WILL_NOT_DO)
    )


def _intake_order_item(order: Order) -> Item:
    if order.status in {OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.REFUNDED}:
        sentence = f"{order.number} is already {order.get_status_display().lower()}: it stays so."
        return Item("order", "Order", Check.INFO, sentence)
    if order.transitions.can(order.status, OrderStatus.REJECTED):
        sentence = f"{order.number} ({order.get_status_display()}) will be REJECTED."
        return Item("order", "Order", Check.OK, sentence)
    return Item(
        "order",
        "Order",
        Check.WARN,
        f"{order.number} is {order.get_status_display().lower()}: too far to be rejected. It "
        "keeps its status and medical operations get an escalation to decide what follows.",
    )


def _intake_money_and_subscription_items(order: Order) -> list[Item]:
    items = []
    invoice = _invoice(order)
    if invoice is not None and invoice.status == InvoiceStatus.PAID:
        items.append(
            Item(
                "payment",
                "Payment",
                Check.WARN,
                f"{invoice.number} is paid ({format_cents(invoice.amount_cents, invoice.currency)})"
                ": rejecting does not refund it.",
            )
        )
    subscription = order.subscription
    if subscription is not None and subscription.status in LIVE_STATUSES:
        items.append(
            Item(
                "subscription",
                "Subscription",
                Check.WARN,
                f"{subscription} ({subscription.plan}) will be cancelled and its cancellation "
                "workflow fires, even with a financed balance remaining.",
            )
        )
    return items
