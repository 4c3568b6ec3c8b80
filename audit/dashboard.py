"""The refunds dashboard's numbers, as a billing admin reads them: pure queries, no writes.

A refund here is money back with the patient: a REFUND payment row the gateway settled
(REFUNDED). Refunds the gateway is still settling, and refunds that failed, are listed apart,
since neither moved money. Every breakdown is one aggregate query (GROUP BY in PostgreSQL), and
each list reads a bounded page, so the page costs the same number of queries for ten refunds as
for a hundred thousand.

Who and why come from the refund's `RefundAttempt` (the request the app sent); a refund made in
the gateway's own dashboard has none and is named so. A refund of an order of several products
is shared between them by each line's part of the order total.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import (
    CharField,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Min,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Lower, NullIf, Trim, TruncWeek
from django.utils import timezone

from billing.models import Payment, RefundAttempt
from billing.states import Gateway, PaymentKind, PaymentStatus, RefundAttemptStatus
from emr.kernel.card_numbers import scrub_card_numbers
from emr.support.models import Escalation
from emr.support.states import EscalationStatus
from orders.states import OrderStatus

DEFAULT_WEEKS = 12
# A range longer than this makes a week chart nobody can read; the filter refuses it.
MAX_DAYS = 3 * 366
# Lists show the newest this many; the heading says how many there are in all.
LIST_LIMIT = 50
TOP_REASONS = 10

OUTSIDE_THE_APP = "Outside the app (gateway dashboard)"
NO_REASON = "No reason recorded (refunded outside the app)"


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date  # inclusive

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    def __str__(self) -> str:
        return f"{_day(self.start)} to {_day(self.end)}"


def default_range(today: date | None = None) -> DateRange:
    """The last 12 weeks, whole weeks from Monday, up to today."""
    today = today or timezone.now().date()
    this_monday = today - timedelta(days=today.weekday())
    return DateRange(this_monday - timedelta(weeks=DEFAULT_WEEKS - 1), today)


@dataclass(frozen=True)
class Row:
    label: str
    count: int
    cents: int


@dataclass(frozen=True)
class Breakdown:
    name: str  # by_week, by_product, ...
    title: str
    rows: tuple[Row, ...]
    note: str = ""
    # False when one refund may count in several rows (an order of several products).
    adds_up: bool = True

    @property
    def count(self) -> int:
        return sum(row.count for row in self.rows)

    @property
    def cents(self) -> int:
        return sum(row.cents for row in self.rows)


def _settled(period: DateRange) -> QuerySet[Payment]:
    return Payment.objects.filter(
        kind=PaymentKind.REFUND,
        status=PaymentStatus.REFUNDED,
        created_at__gte=period.since,
        created_at__lt=period.until,
    ).order_by()


def refunds_made(period: DateRange, currency: str) -> QuerySet[Payment]:
    return _settled(period).filter(currency=currency)


def currencies(period: DateRange) -> list[str]:
    """The currencies refunded in the range, the most refunds first."""
    rows = _settled(period).values("currency").annotate(n=Count("id")).order_by("-n", "currency")
    return [row["currency"] for row in rows]


def by_week(period: DateRange, currency: str) -> Breakdown:
    rows = (
        refunds_made(period, currency)
        .annotate(week=TruncWeek("created_at", tzinfo=UTC))
        .values("week")
        .annotate(n=Count("id"), cents=Sum("amount_cents"))
    )
    found = {row["week"].date(): row for row in rows}
    weeks = []
    monday = period.start - timedelta(days=period.start.weekday())
    while monday <= period.end:
        row = found.get(monday, {"n": 0, "cents": 0})
        weeks.append(Row(f"Week of {_day(monday)}", row["n"], row["cents"] or 0))
        monday += timedelta(weeks=1)
    note = "Weeks start on Monday."
    if period.start.weekday() or period.end.weekday() != 6:
        note += " A week the dates above cut counts only its days inside them."
    return Breakdown("by_week", "Refunds by week", tuple(weeks), note=note)


def by_gateway(period: DateRange, currency: str) -> Breakdown:
    rows = (
        refunds_made(period, currency)
        .values("gateway")
        .annotate(n=Count("id"), cents=Sum("amount_cents"))
    )
    labels = dict(Gateway.choices)
    return Breakdown(
        "by_gateway",
        "Refunds by gateway",
        _largest_first(Row(labels[r["gateway"]], r["n"], r["cents"]) for r in rows),
    )


def by_staff(period: DateRange, currency: str) -> Breakdown:
    rows = (
        refunds_made(period, currency)
        .values(
            who=Coalesce(
                "refund_attempt__requested_by_label",
                Value(OUTSIDE_THE_APP),
                output_field=CharField(),
            ),
            first_name=F("refund_attempt__requested_by__first_name"),
            last_name=F("refund_attempt__requested_by__last_name"),
        )
        .annotate(n=Count("id"), cents=Sum("amount_cents"))
    )
    return Breakdown(
        "by_staff",
        "Refunds by staff member",
        _largest_first(Row(_person(r), r["n"], r["cents"]) for r in rows),
        note="Who asked for the refund; system jobs are named as such.",
    )


def by_reason(period: DateRange, currency: str) -> Breakdown:
    reason = Trim(Coalesce("refund_attempt__reason", Value(""), output_field=CharField()))
    rows = (
        refunds_made(period, currency)
        .values(key=Lower(reason))
        .annotate(label=Min(reason), n=Count("id"), cents=Sum("amount_cents"))
    )
    ordered = _largest_first(Row(r["label"] or NO_REASON, r["n"], r["cents"]) for r in rows)
    note = "The reason as staff typed it (capitals and spaces aside)."
    if len(ordered) > TOP_REASONS:
        rest = ordered[TOP_REASONS - 1 :]
        other = Row(
            f"{len(rest)} other reasons",
            sum(row.count for row in rest),
            sum(row.cents for row in rest),
        )
        ordered = (*ordered[: TOP_REASONS - 1], other)
        note += f" The {TOP_REASONS - 1} most refunded are shown; the rest are added up."
    return Breakdown("by_reason", "Refunds by reason", ordered, note=note)


def by_product(period: DateRange, currency: str) -> Breakdown:
    decimal = DecimalField(max_digits=24, decimal_places=6)
    share = ExpressionWrapper(
        Cast("amount_cents", decimal)
        * F("invoice__order__items__total_cents")
        / NullIf(F("invoice__order__total_cents"), 0),
        output_field=decimal,
    )
    rows = (
        refunds_made(period, currency)
        .values(
            product=F("invoice__order__items__product_id"),
            name=F("invoice__order__items__product__name"),
        )
        .annotate(n=Count("id", distinct=True), share=Sum(share))
    )
    return Breakdown(
        "by_product",
        "Refunds by product",
        _largest_first(
            Row(r["name"] or "No product", r["n"], _whole_cents(r["share"])) for r in rows
        ),
        note="A refund of an order of several products counts for each, its money shared by "
        "each line's part of the order total.",
        adds_up=False,
    )


CHARTS: dict[str, Callable[[DateRange, str], Breakdown]] = {
    "by_week": by_week,
    "by_product": by_product,
    "by_reason": by_reason,
    "by_gateway": by_gateway,
    "by_staff": by_staff,
}


# --- What needs a look ---------------------------------------------------------------------


@dataclass(frozen=True)
class ListedRefund:
    stage: str  # how far it got, in words
    order_id: int
    order_number: str
    order_status: str  # the order's status now, in words
    amount_cents: int
    currency: str
    gateway: str
    asked_by: str
    at: datetime
    said: str  # what the gateway (or the app about it) said, card numbers cut out


@dataclass(frozen=True)
class Listing:
    items: tuple
    total: int  # how many in all; `items` holds at most LIST_LIMIT of them


REFUSED = "Refused by the gateway"
FAILED_LATER = "Accepted, then failed at the gateway"
NO_ANSWER = "Asked; no answer recorded yet"
SETTLING = "Accepted; the gateway is settling it"


def failed_refunds(period: DateRange) -> Listing:
    """Refunds asked for in the range that moved no money, newest first: requests the gateway
    refused at once, and refunds it accepted that failed later."""
    attempts = RefundAttempt.objects.filter(
        status=RefundAttemptStatus.FAILED,
        created_at__gte=period.since,
        created_at__lt=period.until,
    )
    payments = Payment.objects.filter(
        kind=PaymentKind.REFUND,
        status=PaymentStatus.FAILED,
        created_at__gte=period.since,
        created_at__lt=period.until,
    )
    return _merged(
        _attempts(attempts, stage=REFUSED, newest_first=True),
        _payments(payments, stage=FAILED_LATER, newest_first=True),
        newest_first=True,
    )


def pending_refunds() -> Listing:
    """Refunds waiting on the gateway now, whatever the range, oldest first: requests with no
    answer recorded yet (the refund janitor asks again), and refunds it is still settling."""
    attempts = RefundAttempt.objects.filter(status=RefundAttemptStatus.PENDING)
    payments = Payment.objects.filter(kind=PaymentKind.REFUND, status=PaymentStatus.PENDING)
    return _merged(
        _attempts(attempts, stage=NO_ANSWER, newest_first=False),
        _payments(payments, stage=SETTLING, newest_first=False),
        newest_first=False,
    )


def _merged(first: Listing, second: Listing, *, newest_first: bool) -> Listing:
    items = sorted((*first.items, *second.items), key=lambda item: item.at, reverse=newest_first)
    return Listing(tuple(items[:LIST_LIMIT]), first.total + second.total)


def _ordering(newest_first: bool) -> tuple[str, str]:
    return ("-created_at", "-id") if newest_first else ("created_at", "id")


def _attempts(attempts: QuerySet[RefundAttempt], *, stage: str, newest_first: bool) -> Listing:
    page = attempts.select_related("order").order_by(*_ordering(newest_first))[:LIST_LIMIT]
    return Listing(
        tuple(
            ListedRefund(
                stage=stage,
                order_id=attempt.order_id,
                order_number=attempt.order.number,
                order_status=_order_status(attempt.order.status),
                amount_cents=attempt.amount_cents,
                currency=attempt.currency,
                gateway=Gateway(attempt.gateway).label,
                asked_by=attempt.requested_by_label,
                at=attempt.created_at,
                said=scrub_card_numbers(attempt.error_message),
            )
            for attempt in page
        ),
        attempts.order_by().count(),
    )


def _payments(payments: QuerySet[Payment], *, stage: str, newest_first: bool) -> Listing:
    page = payments.select_related("invoice__order", "refund_attempt").order_by(
        *_ordering(newest_first)
    )[:LIST_LIMIT]
    return Listing(
        tuple(
            ListedRefund(
                stage=stage,
                order_id=payment.invoice.order_id,
                order_number=payment.invoice.order.number,
                order_status=_order_status(payment.invoice.order.status),
                amount_cents=payment.amount_cents,
                currency=payment.currency,
                gateway=Gateway(payment.gateway).label,
                asked_by=_asked_by(payment),
                at=payment.created_at,
                said=scrub_card_numbers(_joined(payment.failure_message, payment.review_note)),
            )
            for payment in page
        ),
        payments.order_by().count(),
    )


@dataclass(frozen=True)
class ListedOverride:
    order_id: int
    order_number: str
    amount_cents: int
    quote_cents: int
    currency: str
    asked_by: str
    at: datetime
    outcome: str  # the attempt's status, in words
    why: str  # the override reason staff gave


def policy_overrides(period: DateRange) -> Listing:
    """Refunds asked for in the range beyond what the refund policy allowed, newest first,
    with the quote and the reason staff gave (billing.refunds records both on the attempt)."""
    attempts = RefundAttempt.objects.filter(
        created_at__gte=period.since, created_at__lt=period.until
    ).exclude(policy_override_reason="")
    page = attempts.select_related("order").order_by("-created_at", "-id")[:LIST_LIMIT]
    return Listing(
        tuple(
            ListedOverride(
                order_id=attempt.order_id,
                order_number=attempt.order.number,
                amount_cents=attempt.amount_cents,
                quote_cents=attempt.policy_quote_cents or 0,
                currency=attempt.currency,
                asked_by=attempt.requested_by_label,
                at=attempt.created_at,
                outcome=attempt.get_status_display(),
                why=scrub_card_numbers(attempt.policy_override_reason),
            )
            for attempt in page
        ),
        attempts.order_by().count(),
    )


def open_escalations() -> Listing:
    """Escalations no team has resolved yet, oldest first: the longest waiting on top."""
    escalations = Escalation.objects.filter(status=EscalationStatus.OPEN)
    page = escalations.select_related("order", "subscription__plan").order_by("created_at", "id")
    return Listing(tuple(page[:LIST_LIMIT]), escalations.order_by().count())


# --- Wording -------------------------------------------------------------------------------


def _largest_first(rows) -> tuple[Row, ...]:
    return tuple(sorted(rows, key=lambda row: (-row.cents, -row.count, row.label)))


def _whole_cents(share: Decimal | None) -> int:
    return int((share or Decimal(0)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _day(day: date) -> str:
    return f"{day:%b} {day.day}, {day.year}"


def _person(row: dict) -> str:
    who = row["who"]
    if who.startswith("system:"):
        return f"System job: {who.removeprefix('system:')}"
    name = " ".join(part for part in (row["first_name"], row["last_name"]) if part)
    return f"{name} ({who})" if name else who


def _asked_by(payment: Payment) -> str:
    # A reverse one-to-one that is missing raises a subclass of AttributeError.
    attempt = getattr(payment, "refund_attempt", None)
    return attempt.requested_by_label if attempt is not None else OUTSIDE_THE_APP


def _joined(*sentences: str) -> str:
    return " ".join(sentence for sentence in sentences if sentence)


def _order_status(status: str) -> str:
    return OrderStatus(status).label
