"""What the portal shows a patient: their own records, in their words.

Read-models: each page asks one function here. Every query goes through `emr.portal.scope`
(the patient's own records only) and each page costs a fixed number of queries however many
orders, invoices, payments or history rows the patient has. What a patient never sees is
never read for them: staff notes and review flags, escalations, gateway tokens, internal codes.
"""

import base64
import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Prefetch, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.text import slugify

from billing.models import (
    Invoice,
    Payment,
    PaymentMethod,
    RefundPolicyVersion,
    SessionPackage,
    SessionRedemption,
)
from billing.packages import with_usage
from billing.payments import active_gateway
from billing.policies import combined_hash, unacknowledged_versions, versions_of
from billing.states import InvoiceStatus, PaymentKind, PaymentStatus
from emr import documents
from emr.kernel.actors import Actor
from emr.kernel.errors import NotFound
from emr.kernel.money import format_cents
from emr.models import DeliveryStatus, Patient, SentMessage, SignedDocument
from emr.portal.payments import issuer_words
from emr.portal.scope import (
    NOT_FOUND,
    own_card,
    own_cards,
    own_invoice,
    own_invoices,
    own_order,
    own_orders,
    own_package,
    own_packages,
    own_signed_document,
    own_signed_documents,
    own_subscription,
    own_subscriptions,
    subscription_number,
)
from emr.portal.subscription_changes import Offer, available_changes, price_words
from integrations.beluga.models import BelugaMessage
from integrations.beluga.states import MessageChannel
from orders.models import Order, OrderItem
from orders.states import WAITING_FOR_PAYMENT, OrderStatus, RecoveryStatus
from subscriptions import lifecycle
from subscriptions.models import Subscription
from subscriptions.states import LIVE_STATUSES, SubscriptionStatus

PAGE_SIZE = 20
RECENT_ORDERS = 5

# --- Words ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    label: str
    tone: str  # "ok", "warn", "stop" or "" (a badge's colour)
    sentence: str = ""


O = OrderStatus  # noqa: E741 (the enum, as the other state tables abbreviate it)
ORDER_STATUS = {
    O.PENDING: Status("Waiting for payment", "warn", "It goes ahead once its invoice is paid."),
    O.AWAITING_PAYMENT: Status(
        "Payment needed",
        "stop",
        "The last payment did not go through. Pay the open invoice to go on.",
    ),
    O.PROCESSING: Status("In progress", "ok", "Paid. The clinic is working on your order."),
    O.AWAITING_REQUIREMENTS: Status(
        "Waiting for you",
        "warn",
        "It goes on once you have done what the clinic asked: sign a document on your "
        "Documents page, or fill in the health questionnaire the clinic sent you.",
    ),
    O.AWAITING_REQUISITION: Status(
        "Preparing your lab order", "", "The clinic is preparing the lab order for your tests."
    ),
    O.AWAITING_RESULTS: Status(
        "Waiting for lab results", "", "It goes on once the clinic has your lab results."
    ),
    O.AWAITING_SCRIPT: Status(
        "With your provider", "", "A provider is reviewing your information."
    ),
    O.AWAITING_FULFILLMENT: Status(
        "Prescription written", "ok", "Your prescription is written and goes to the pharmacy next."
    ),
    O.AWAITING_SHIPMENT: Status(
        "At the pharmacy", "ok", "The pharmacy is preparing your order for shipping."
    ),
    O.SHIPPED: Status("Shipped", "ok", "Your order is on its way."),
    O.COMPLETED: Status("Completed", "ok", "This order is complete."),
    O.CANCELLED: Status("Cancelled", "", "This order was cancelled and will not go ahead."),
    O.REJECTED: Status(
        "Not approved", "", "After review, the clinic could not go ahead with this order."
    ),
    O.RETURNED: Status("Returned", "", "This order was returned."),
    O.REFUNDED: Status("Refunded", "", "This order was refunded."),
}

SUB = SubscriptionStatus

# The guide's answer ("Common Patient Questions") to "I canceled my order. Why do I not see a
# refund?", said to the patient.
CANCELLED_NOT_REFUNDED = (
    "Order cancellation and refund are different. Cancelling this order stopped it, but it did "
    "not send your money back, and no refund has been made for it. If you expected one, "
    "contact the clinic: they will check whether a refund is due and process it through the "
    "payment processor."
)

BRANDS = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "american express": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "jcb": "JCB",
    "unionpay": "UnionPay",
}


def card_words(brand: str, last4: str) -> str:
    """ "Visa ····4242": what a patient sees of a card, never more."""
    if not last4:
        return "your card"
    name = BRANDS.get((brand or "").lower(), (brand or "Card").title())
    return f"{name} ····{last4}"


def day(moment: datetime | date | None) -> str:
    return format_date(moment, "j M Y") if moment else ""


def money(cents: int, currency: str) -> str:
    return format_cents(cents, currency)


# --- Money lines: what was paid, with which card, and what came back -----------------------


@dataclass(frozen=True)
class MoneyLine:
    kind: str  # "paid", "failed", "pending", "refunded", "refund-pending", "refund-failed"
    sentence: str
    amount: str
    at: datetime
    card: str
    gateway: str
    reference: str  # the gateway's transaction reference: proof of payment


def money_lines(payments: list[Payment]) -> list[MoneyLine]:
    return [_money_line(payment) for payment in payments]


def _money_line(payment: Payment) -> MoneyLine:
    amount = money(payment.amount_cents, payment.currency)
    card = card_words(payment.card_brand, payment.card_last4)
    on = day(payment.created_at)
    if payment.kind == PaymentKind.CHARGE:
        kind, sentence = {
            PaymentStatus.SUCCEEDED: ("paid", f"{amount} paid with {card} on {on}"),
            PaymentStatus.FAILED: (
                "failed",
                f"A payment of {amount} with {card} did not go through on {on}. "
                "No money was taken.",
            ),
            PaymentStatus.PENDING: (
                "pending",
                f"A payment of {amount} with {card} is being confirmed (started {on})",
            ),
        }[payment.status]
    else:
        kind, sentence = {
            PaymentStatus.REFUNDED: ("refunded", f"{amount} refunded to {card} on {on}"),
            PaymentStatus.PENDING: (
                "refund-pending",
                f"{amount} refund to {card} is on its way (started {on}). Banks can take 5 to "
                "10 business days to show it.",
            ),
            PaymentStatus.FAILED: (
                "refund-failed",
                f"A refund of {amount} to {card} could not be completed. The clinic has been "
                "told and will contact you.",
            ),
        }[payment.status]
    return MoneyLine(
        kind=kind,
        sentence=sentence,
        amount=amount,
        at=payment.created_at,
        card=card,
        gateway=payment.get_gateway_display(),
        reference=payment.transaction_id,
    )


def _payments() -> Prefetch:
    # Only what a patient may see of a payment: never its review flags or notes.
    visible = Payment.objects.only(
        "invoice_id",
        "kind",
        "status",
        "gateway",
        "amount_cents",
        "currency",
        "transaction_id",
        "card_brand",
        "card_last4",
        "created_at",
    ).order_by("created_at", "id")
    return Prefetch("invoice__payments", queryset=visible, to_attr="visible_payments")


# --- Orders --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRow:
    order: Order
    status: Status
    summary: str
    total: str


def _order_row(order: Order) -> OrderRow:
    items = list(order.items.all())
    summary = items[0].description if items else "Order"
    if len(items) > 1:
        summary += f" and {len(items) - 1} more"
    return OrderRow(
        order, ORDER_STATUS[order.status], summary, money(order.total_cents, order.currency)
    )


def order_list(patient: Patient, *, page: int | str = 1) -> tuple[Page, list[OrderRow]]:
    orders = own_orders(patient).prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.order_by("id"))
    )
    found = Paginator(orders.order_by("-created_at", "-id"), PAGE_SIZE).get_page(page)
    return found, [_order_row(order) for order in found.object_list]


@dataclass(frozen=True)
class OrderPage:
    order: Order
    status: Status
    items: list[OrderItem]
    total: str
    invoice: Invoice | None
    money: list[MoneyLine]
    refunded: str
    cancelled_not_refunded: str
    pay_url: str
    to_sign: list[str] = ()  # names of the documents this order waits for the patient to sign


def order_page(patient: Patient, number: str) -> OrderPage:
    order = own_order(
        patient,
        number,
        queryset=Order.objects.select_related("invoice").prefetch_related(
            # An item that opened a session package links to its ledger.
            Prefetch("items", queryset=OrderItem.objects.select_related("package").order_by("id")),
            _payments(),
        ),
    )
    invoice = getattr(order, "invoice", None)
    payments = invoice.visible_payments if invoice is not None else []
    paid = any(
        p.kind == PaymentKind.CHARGE and p.status == PaymentStatus.SUCCEEDED for p in payments
    )
    refunded = any(
        p.kind == PaymentKind.REFUND and p.status != PaymentStatus.FAILED for p in payments
    )
    to_sign = (
        [r.template.name for r in documents.missing_documents(order)]
        if order.status in documents.OPEN_STATUSES
        else []
    )
    status = ORDER_STATUS[order.status]
    if to_sign and order.status == O.AWAITING_REQUIREMENTS:
        status = Status(
            "Waiting for your signature",
            "warn",
            f"It goes on once you sign: {', '.join(to_sign)}.",
        )
    return OrderPage(
        order=order,
        status=status,
        to_sign=to_sign,
        items=list(order.items.all()),
        total=money(order.total_cents, order.currency),
        invoice=invoice,
        money=money_lines(payments),
        refunded=money(order.refunded_cents, order.currency) if order.refunded_cents else "",
        cancelled_not_refunded=(
            CANCELLED_NOT_REFUNDED if order.status == O.CANCELLED and paid and not refunded else ""
        ),
        pay_url=recovery_url(invoice)
        if invoice is not None and invoice.status == InvoiceStatus.SENT
        else "",
    )


def recovery_url(invoice: Invoice) -> str:
    return f"{reverse('portal:invoices')}?recovery=1&invoice={invoice.number}"


# --- Invoices and receipts -----------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceRow:
    invoice: Invoice
    status: Status
    amount: str


def invoice_status(invoice: Invoice, order: Order) -> Status:
    if invoice.status == InvoiceStatus.PAID:
        return Status("Paid", "ok")
    if invoice.status == InvoiceStatus.SENT:
        return Status("Payment due", "stop" if order.status == O.AWAITING_PAYMENT else "warn")
    return Status("Refunded" if order.refunded_cents else "Cancelled", "")


def invoice_list(patient: Patient, *, page: int | str = 1) -> tuple[Page, list[InvoiceRow]]:
    invoices = own_invoices(patient).select_related("order").order_by("-issued_at", "-id")
    found = Paginator(invoices, PAGE_SIZE).get_page(page)
    return found, [
        InvoiceRow(
            invoice,
            invoice_status(invoice, invoice.order),
            money(invoice.amount_cents, invoice.currency),
        )
        for invoice in found.object_list
    ]


@dataclass(frozen=True)
class Clinic:
    name: str
    address: str
    email: str
    phone: str
    tax_id: str


def clinic() -> Clinic:
    return Clinic(
        name=settings.CLINIC_NAME,
        address=settings.CLINIC_ADDRESS,
        email=settings.CLINIC_EMAIL,
        phone=settings.CLINIC_PHONE,
        tax_id=settings.CLINIC_TAX_ID,
    )


@dataclass(frozen=True)
class Receipt:
    """An invoice as proof of payment: amounts, dates, the card, the gateway's reference."""

    invoice: Invoice
    order: Order
    patient: Patient
    clinic: Clinic
    status: Status
    items: list[OrderItem]
    total: str
    money: list[MoneyLine]
    paid: str
    refunded: str
    is_receipt: bool
    pay_url: str


def receipt(patient: Patient, number: str) -> Receipt:
    invoice = own_invoice(
        patient,
        number,
        queryset=Invoice.objects.select_related("order").prefetch_related(
            Prefetch("order__items", queryset=OrderItem.objects.order_by("id")),
            Prefetch(
                "payments",
                queryset=Payment.objects.only(
                    "invoice_id",
                    "kind",
                    "status",
                    "gateway",
                    "amount_cents",
                    "currency",
                    "transaction_id",
                    "card_brand",
                    "card_last4",
                    "created_at",
                ).order_by("created_at", "id"),
                to_attr="visible_payments",
            ),
        ),
    )
    payments = invoice.visible_payments
    paid = sum(
        p.amount_cents
        for p in payments
        if p.kind == PaymentKind.CHARGE and p.status == PaymentStatus.SUCCEEDED
    )
    refunded = sum(
        p.amount_cents
        for p in payments
        if p.kind == PaymentKind.REFUND and p.status == PaymentStatus.REFUNDED
    )
    return Receipt(
        invoice=invoice,
        order=invoice.order,
        patient=patient,
        clinic=clinic(),
        status=invoice_status(invoice, invoice.order),
        items=list(invoice.order.items.all()),
        total=money(invoice.amount_cents, invoice.currency),
        money=money_lines(payments),
        paid=money(paid, invoice.currency),
        refunded=money(refunded, invoice.currency) if refunded else "",
        is_receipt=paid > 0,
        pay_url=recovery_url(invoice) if invoice.status == InvoiceStatus.SENT else "",
    )


# --- Paying an open invoice (the recovery view) --------------------------------------------


@dataclass(frozen=True)
class CardChoice:
    pk: int
    label: str
    expires: str
    is_default: bool


def usable_cards(patient: Patient) -> list[CardChoice]:
    """Saved cards the clinic can charge now (its active gateway's), default first."""
    cards = own_cards(patient).filter(gateway=active_gateway()).only(*_CARD_FIELDS)
    return [_card_choice(card) for card in cards.order_by("-is_default", "-created_at", "-id")]


_CARD_FIELDS = ("brand", "last4", "exp_month", "exp_year", "is_default", "created_at", "gateway")


def _card_choice(card: PaymentMethod) -> CardChoice:
    expires = f"{card.exp_month:02d}/{card.exp_year}"
    label = f"{card_words(card.brand, card.last4)}, expires {expires}"
    return CardChoice(
        card.pk, label + (" (default)" if card.is_default else ""), expires, card.is_default
    )


@dataclass(frozen=True)
class PolicyTerms:
    """One refund policy version the order was sold under, as the pay page shows it."""

    version_id: int
    title: str  # "Package terms (version 2)"
    text: str  # the generated text, exactly as hashed
    must_accept: bool  # a tick is needed before paying
    accepted_at: datetime | None  # when the patient (or CS for them) accepted it


@dataclass(frozen=True)
class OpenInvoice:
    invoice: Invoice
    amount: str
    what: str  # what it pays for, in words
    why: str  # why it is open: the failed payment, or no usable card
    last_refusal: str
    subscription: Subscription | None
    url: str
    terms: tuple[PolicyTerms, ...] = ()
    terms_sha256: str = ""  # the fingerprint of all the terms shown, what accepting them names

    @property
    def terms_to_accept(self) -> tuple[PolicyTerms, ...]:
        return tuple(terms for terms in self.terms if terms.must_accept)


@dataclass(frozen=True)
class RecoveryPage:
    open_invoices: list[OpenInvoice]
    selected: OpenInvoice | None
    closed: Receipt | None  # the invoice the link named, already paid or closed
    cards: list[CardChoice]


def recovery_page(patient: Patient, number: str | None) -> RecoveryPage:
    invoices = own_invoices(
        patient,
        Invoice.objects.select_related("order__subscription__plan").prefetch_related(
            # The refund terms each order was sold under, and whether they were accepted.
            Prefetch(
                "order__items",
                queryset=OrderItem.objects.select_related("refund_policy_version__policy").order_by(
                    "id"
                ),
            ),
            "order__acknowledgements",
            Prefetch(
                "payments",
                queryset=Payment.objects.filter(
                    kind=PaymentKind.CHARGE, status=PaymentStatus.FAILED
                )
                .only("invoice_id", "failure_message", "created_at", "status", "kind")
                .order_by("-created_at", "-id"),
                to_attr="failed_charges",
            ),
        ),
    )
    open_invoices = [
        _open_invoice(invoice)
        for invoice in invoices.filter(
            Q(order__recovery_status__in=WAITING_FOR_PAYMENT) | Q(order__status=O.AWAITING_PAYMENT),
            status=InvoiceStatus.SENT,
        ).order_by("issued_at", "id")
    ]
    selected = closed = None
    if number:
        invoice = own_invoice(patient, number, queryset=invoices)
        if invoice.status == InvoiceStatus.SENT:
            selected = _open_invoice(invoice, with_terms=True)
        else:
            closed = receipt(patient, number)
    elif len(open_invoices) == 1:
        selected = _open_invoice(open_invoices[0].invoice, with_terms=True)
    return RecoveryPage(open_invoices, selected, closed, usable_cards(patient))


def _policy_terms(order: Order) -> tuple[tuple[PolicyTerms, ...], str]:
    """The terms of every policy version the order's items were sold under, and their
    fingerprint. Accepting records all of them, so when one must be accepted each shown
    without an acceptance gets its own tick."""
    versions: list[RefundPolicyVersion] = versions_of(order)
    if not versions:
        return (), ""
    to_accept = bool(unacknowledged_versions(order))
    accepted = {ack.policy_version_id: ack.acknowledged_at for ack in order.acknowledgements.all()}
    terms = tuple(
        PolicyTerms(
            version_id=version.pk,
            title=f"{version.policy.name} (version {version.version})",
            text=version.text,
            must_accept=to_accept and version.pk not in accepted,
            accepted_at=accepted.get(version.pk),
        )
        for version in versions
    )
    return terms, combined_hash(versions)


def _open_invoice(invoice: Invoice, *, with_terms: bool = False) -> OpenInvoice:
    order = invoice.order
    subscription = order.subscription
    terms, terms_sha256 = _policy_terms(order) if with_terms else ((), "")
    what = (
        f"Your {subscription.plan.name} subscription" if subscription else f"Order {order.number}"
    )
    failures = invoice.failed_charges
    if order.recovery_status == RecoveryStatus.NEEDS_PAYMENT_METHOD:
        why = "The clinic has no card on file it can charge for this payment."
    elif failures:
        why = f"The payment on {day(failures[0].created_at)} did not go through."
    else:
        why = "This invoice is waiting for payment."
    if (
        subscription is not None
        and subscription.status == SUB.PAUSED
        and subscription.awaiting_payment
    ):
        why += " Your subscription is paused until it is paid; paying it makes it active again."
    return OpenInvoice(
        invoice=invoice,
        amount=money(invoice.amount_cents, invoice.currency),
        what=what,
        why=why,
        last_refusal=issuer_words(failures[0].failure_message) if failures else "",
        subscription=subscription,
        url=recovery_url(invoice),
        terms=terms,
        terms_sha256=terms_sha256,
    )


# --- Saved cards ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedCard:
    pk: int
    name: str  # "Visa ····4242"
    expires: str
    is_default: bool
    pays_for: list[str]  # the live subscriptions charged to it: it cannot be removed


def saved_cards(patient: Patient) -> list[SavedCard]:
    """The cards the clinic can charge (its active gateway's), default first."""
    cards = own_cards(patient).filter(gateway=active_gateway()).only(*_CARD_FIELDS)
    return _saved_cards(list(cards.order_by("-is_default", "-created_at", "-id")))


def saved_card(patient: Patient, card_id: int) -> SavedCard:
    return _saved_cards([own_card(patient, card_id)])[0]


def _saved_cards(cards: list[PaymentMethod]) -> list[SavedCard]:
    pays_for: dict[int, list[str]] = {card.pk: [] for card in cards}
    for subscription in (
        Subscription.objects.filter(payment_method__in=pays_for, status__in=LIVE_STATUSES)
        .select_related("plan")
        .order_by("pk")
    ):
        pays_for[subscription.payment_method_id].append(subscription.plan.name)
    return [
        SavedCard(
            pk=card.pk,
            name=card_words(card.brand, card.last4),
            expires=f"{card.exp_month:02d}/{card.exp_year}",
            is_default=card.is_default,
            pays_for=pays_for[card.pk],
        )
        for card in cards
    ]


# --- Messages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    sender: str
    body: str
    sent_at: datetime
    order_number: str


def doctor_messages(patient: Patient, *, page: int | str = 1) -> tuple[Page, list[Message]]:
    """The patient's conversation with their providers, newest first, as Beluga relayed it.
    Only the doctor-patient channel: the clinic's own channel with Beluga's admins is internal."""
    found = Paginator(
        BelugaMessage.objects.filter(
            visit__order__patient=patient, channel=MessageChannel.DOCTOR_PATIENT
        )
        .select_related("visit__order")
        .only("sender", "body", "sent_at", "visit__order__number")
        .order_by("-sent_at", "-id"),
        PAGE_SIZE,
    ).get_page(page)
    return found, [
        Message(
            sender=message.sender or "Your provider",
            body=message.body,
            sent_at=message.sent_at,
            order_number=message.visit.order.number,
        )
        for message in found.object_list
    ]


CLINIC_MESSAGES_SHOWN = 20


@dataclass(frozen=True)
class ClinicMessage:
    id: int
    channel: str
    subject: str
    body: str  # empty for an email whose sign-in link is not kept
    sent_at: datetime
    order_number: str | None


def clinic_messages(patient: Patient) -> list[ClinicMessage]:
    """What the clinic emailed or texted the patient (the communication log), newest first:
    read-only; a sign-in link that worked once is not shown again."""
    sent = (
        SentMessage.objects.filter(patient=patient, status=DeliveryStatus.SENT)
        .select_related("order")
        .order_by("-sent_at", "-id")[:CLINIC_MESSAGES_SHOWN]
    )
    return [
        ClinicMessage(
            id=message.pk,
            channel="Text message" if message.channel == "SMS" else "Email",
            subject=message.subject or "",
            body=message.body
            or "This email held a sign-in link that works once, so it is not shown again.",
            sent_at=message.sent_at,
            order_number=message.order.number if message.order else None,
        )
        for message in sent
    ]


# --- Subscriptions -------------------------------------------------------------------------


def subscription_status(subscription: Subscription) -> Status:
    if subscription.status == SUB.ACTIVE:
        if subscription.has_scheduled_cancellation:
            return Status("Active, cancellation scheduled", "warn")
        return Status("Active", "ok")
    if subscription.status == SUB.PAUSED:
        if subscription.awaiting_payment:
            return Status("Paused: payment needed", "stop")
        return Status("Paused", "warn")
    if subscription.status == SUB.CANCELLED:
        return Status("Cancelled", "")
    return Status("Ended", "")


@dataclass(frozen=True)
class SubscriptionRow:
    subscription: Subscription
    number: str
    status: Status
    price: str
    next_charge: str


def _subscription_row(subscription: Subscription) -> SubscriptionRow:
    return SubscriptionRow(
        subscription=subscription,
        number=subscription_number(subscription),
        status=subscription_status(subscription),
        price=price_words(subscription),
        next_charge=day(subscription.next_billing_at) if subscription.status == SUB.ACTIVE else "",
    )


@dataclass(frozen=True)
class SubscriptionPage:
    row: SubscriptionRow
    remaining_payments: int
    balance: str
    scheduled_on: str
    open_invoices: list[OpenInvoice]
    offer: Offer
    cancelled_on: str


def subscription_page(patient: Patient, number: str, *, actor: Actor) -> SubscriptionPage:
    subscription = own_subscription(
        patient, number, queryset=Subscription.objects.select_related("plan")
    )
    plan = subscription.plan
    open_ids = [invoice.pk for invoice in lifecycle.open_cycle_invoices(subscription)]
    recovery = recovery_page(patient, None) if open_ids else None
    return SubscriptionPage(
        row=_subscription_row(subscription),
        remaining_payments=subscription.recovery_cycles_remaining,
        balance=money(subscription.recovery_balance_cents, plan.currency),
        scheduled_on=day(subscription.cancellation_scheduled_at),
        open_invoices=[
            o for o in (recovery.open_invoices if recovery else []) if o.invoice.pk in open_ids
        ],
        offer=available_changes(subscription, actor=actor),
        cancelled_on=day(subscription.cancelled_at),
    )


def subscription_for_change(patient: Patient, number: str) -> Subscription:
    return own_subscription(patient, number, queryset=Subscription.objects.select_related("plan"))


def subscription_list(patient: Patient) -> list[SubscriptionRow]:
    subscriptions = own_subscriptions(patient, Subscription.objects.select_related("plan"))
    return [_subscription_row(s) for s in subscriptions.order_by("-created_at", "-id")]


# --- Session packages: what was bought, what was used, what is left ------------------------


@dataclass(frozen=True)
class Session:
    """One session taken from a package, as the patient sees it: when and with whom. The
    chart note, the appointment reference and who typed it in are the clinic's, never read."""

    at: datetime
    provider: str


@dataclass(frozen=True)
class PackageRow:
    package: SessionPackage
    name: str
    order_number: str
    total: int
    used: int
    remaining: int
    expires_on: str
    status: Status


@dataclass(frozen=True)
class PackagePage:
    row: PackageRow
    sessions: list[Session]


def package_status(package: SessionPackage, used: int, now: datetime | None = None) -> Status:
    now = now or timezone.now()
    left = package.sessions_total - used
    if package.expires_at is not None and package.expires_at <= now:
        return Status(
            "Expired",
            "stop",
            f"This package expired on {day(package.expires_at)}. Sessions left unused then "
            "cannot be booked any more.",
        )
    if left <= 0:
        return Status("All used", "", f"All {package.sessions_total} sessions are used.")
    until = f" Use them by {day(package.expires_at)}." if package.expires_at else ""
    return Status(
        "Active", "ok", f"{left} of {package.sessions_total} sessions left to book.{until}"
    )


def _package_row(package: SessionPackage, used: int) -> PackageRow:
    return PackageRow(
        package=package,
        name=package.order_item.description,
        order_number=package.order_item.order.number,
        total=package.sessions_total,
        used=used,
        remaining=max(0, package.sessions_total - used),
        expires_on=day(package.expires_at),
        status=package_status(package, used),
    )


_PACKAGE_FIELDS = (
    "sessions_total",
    "opened_at",
    "expires_at",
    "order_item__description",
    "order_item__order__number",
)


def _packages(patient: Patient):
    return own_packages(
        patient, SessionPackage.objects.select_related("order_item__order").only(*_PACKAGE_FIELDS)
    )


def package_list(patient: Patient, *, page: int | str = 1) -> tuple[Page, list[PackageRow]]:
    packages = with_usage(_packages(patient)).order_by("-opened_at", "-id")
    found = Paginator(packages, PAGE_SIZE).get_page(page)
    return found, [_package_row(package, package.sessions_used) for package in found.object_list]


def package_page(patient: Patient, package_id: int) -> PackagePage:
    visible = SessionRedemption.objects.only("package_id", "redeemed_at", "provider").order_by(
        "redeemed_at", "id"
    )
    package = own_package(
        patient,
        package_id,
        queryset=_packages(patient).prefetch_related(
            Prefetch("redemptions", queryset=visible, to_attr="visible_sessions")
        ),
    )
    sessions = [Session(r.redeemed_at, r.provider) for r in package.visible_sessions]
    return PackagePage(_package_row(package, len(sessions)), sessions)


# --- The home page -------------------------------------------------------------------------


@dataclass(frozen=True)
class Attention:
    """Something the patient should act on, first on the home page."""

    kind: str  # "payment", "document", "card", "scheduled"
    title: str
    sentence: str
    link: str = ""
    link_text: str = ""


@dataclass(frozen=True)
class Dashboard:
    attention: list[Attention]
    subscriptions: list[SubscriptionRow]
    recent_orders: list[OrderRow]
    more_orders: bool = False


def dashboard(patient: Patient) -> Dashboard:
    attention = [
        Attention(
            kind="payment",
            title=f"Payment needed: {open_invoice.amount}",
            sentence=(
                f"{open_invoice.what}, invoice {open_invoice.invoice.number}. {open_invoice.why}"
            ),
            link=open_invoice.url,
            link_text=f"Pay invoice {open_invoice.invoice.number}",
        )
        for open_invoice in recovery_page(patient, None).open_invoices
    ]
    attention += [
        Attention(
            kind="document",
            title=f"Please sign: {entry.template.name}",
            sentence=(
                f"Order {', '.join(entry.order_numbers)} goes on once you have read and signed it."
            ),
            link=reverse("portal:sign-document", args=[entry.template.pk]),
            link_text=f"Read and sign {entry.template.name}",
        )
        for entry in documents.documents_to_sign(patient)
    ]
    attention += _expiring_cards(patient)
    subscriptions = list(
        own_subscriptions(patient, Subscription.objects.select_related("plan"))
        .filter(status__in=[SUB.ACTIVE, SUB.PAUSED])
        .order_by("-created_at", "-id")
    )
    for subscription in subscriptions:
        if subscription.has_scheduled_cancellation:
            remaining = subscription.recovery_cycles_remaining
            attention.append(
                Attention(
                    kind="scheduled",
                    title=f"Your {subscription.plan.name} subscription is set to cancel",
                    sentence=(
                        f"It cancels after your final payment ({remaining} left). "
                        "Until then you can withdraw the request."
                    ),
                    link=reverse("portal:subscription", args=[subscription_number(subscription)]),
                    link_text="See the subscription",
                )
            )
    orders = (
        own_orders(patient)
        .prefetch_related(Prefetch("items", queryset=OrderItem.objects.order_by("id")))
        .order_by("-created_at", "-id")[: RECENT_ORDERS + 1]
    )
    rows = [_order_row(order) for order in orders]
    return Dashboard(
        attention=attention,
        subscriptions=[_subscription_row(s) for s in subscriptions],
        recent_orders=rows[:RECENT_ORDERS],
        more_orders=len(rows) > RECENT_ORDERS,
    )


def _expiring_cards(patient: Patient) -> list[Attention]:
    today = timezone.now().date()
    horizon = today + timedelta(days=settings.PORTAL_CARD_EXPIRY_WARNING_DAYS)
    found = []
    for card in own_cards(patient).filter(gateway=active_gateway()).only(*_CARD_FIELDS):
        last_day = date(
            card.exp_year, card.exp_month, calendar.monthrange(card.exp_year, card.exp_month)[1]
        )
        if last_day > horizon:
            continue
        words = card_words(card.brand, card.last4)
        expired = last_day < today
        found.append(
            Attention(
                kind="card",
                title=f"Your {words} {'has expired' if expired else 'expires soon'}",
                sentence=(
                    f"It {'expired' if expired else 'expires'} at the end of "
                    f"{format_date(last_day, 'F Y')}. Add a new card"
                    + ("" if expired else " before then")
                    + ", so your payments keep going through."
                ),
                link=f"{reverse('portal:cards')}#add-card",
                link_text="Add a new card",
            )
        )
    return found


# --- Documents: what to sign, and what was signed --------------------------------------------

KIND_WORDS = {"CONSENT": "Consent", "DISCLAIMER": "Treatment disclaimer", "PAYMENT_TERMS": "Terms"}


@dataclass(frozen=True)
class SignedRow:
    id: int
    name: str
    kind: str
    version: int
    signed_on: str
    signed_at: datetime


@dataclass(frozen=True)
class DocumentsPage:
    to_sign: list[documents.ToSign]
    signed: list[SignedRow]


def _signed_row(signed) -> SignedRow:
    template = signed.version.template
    return SignedRow(
        id=signed.pk,
        name=template.name,
        kind=KIND_WORDS.get(template.kind, template.get_kind_display()),
        version=signed.version.version,
        signed_on=day(signed.signed_at),
        signed_at=signed.signed_at,
    )


def documents_page(patient: Patient) -> DocumentsPage:
    signed = own_signed_documents(patient, documents.signed_documents_of(patient))
    return DocumentsPage(
        to_sign=documents.documents_to_sign(patient),
        signed=[_signed_row(row) for row in signed],
    )


@dataclass(frozen=True)
class SignPage:
    entry: documents.ToSign
    text: str
    paragraphs: list[str]


def sign_page(patient: Patient, template_id: int) -> SignPage:
    """A document the patient's open orders wait for them to sign; anything else is not theirs
    to sign here (404, as every other number that is not theirs)."""
    entry = next(
        (e for e in documents.documents_to_sign(patient) if e.template.pk == template_id), None
    )
    if entry is None:
        raise NotFound(NOT_FOUND, code="portal.not_found")
    version = entry.version
    return SignPage(
        entry=entry,
        text=documents.document_text(version.title, version.body),
        paragraphs=version.body.split("\n\n"),
    )


@dataclass(frozen=True)
class SignedPage:
    signed: object
    row: SignedRow
    title: str
    paragraphs: list[str]
    signature_data_url: str


def signed_page(patient: Patient, signed_id: int) -> SignedPage:
    signed = own_signed_document(
        patient, signed_id, SignedDocument.objects.select_related("version__template").defer("pdf")
    )
    title, _, body = signed.text.partition("\n\n")
    png = bytes(signed.signature_png) if signed.signature_png else b""
    return SignedPage(
        signed=signed,
        row=_signed_row(signed),
        title=title,
        paragraphs=body.split("\n\n"),
        signature_data_url=(
            "data:image/png;base64," + base64.b64encode(png).decode() if png else ""
        ),
    )


def signed_pdf(patient: Patient, signed_id: int) -> tuple[bytes, str]:
    """The PDF exactly as stored at signing, and a file name for it."""
    signed = own_signed_document(
        patient,
        signed_id,
        SignedDocument.objects.select_related("version__template").only(
            "pdf", "signed_at", "patient_id", "version__version", "version__template__name"
        ),
    )
    name = slugify(signed.version.template.name) or "document"
    return (
        bytes(signed.pdf),
        f"{name}-v{signed.version.version}-signed-{signed.signed_at:%Y-%m-%d}.pdf",
    )
