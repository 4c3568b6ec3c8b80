"""The billing cycle: starting a subscription with its first paid cycle, renewing it on its
date, and what each charge's answer means (clinic-platform-notes.md, "Subscriptions" and
"Gateways and saved cards"; the guide, "Payment Recovery Cancellations").

A cycle is one period with its own order and invoice, opened once (`open_next_cycle`). The
card is the subscription's own while it is chargeable with the clinic's active gateway, else
the patient's default there. `billing.payments.charge_invoice` moves the money (at most once);
its refusals are sorted here into outcomes: paid, charge failed, no compatible card (both enter
`subscriptions.recovery`), or unknown (the payment stays PENDING until the charge janitor
resolves it). The renewal sweep claims each due subscription under SKIP LOCKED, so two beats
never bill one twice.
"""

import calendar
import enum
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from billing.models import PaymentMethod
from billing.payments import PaymentRequired, active_gateway, charge_invoice
from billing.states import Gateway, InvoiceStatus
from emr.kernel import metrics
from emr.kernel.actors import Actor, Door, acting
from emr.kernel.errors import DomainError, InvalidInput, StateConflict
from emr.kernel.services import require_reason, service_transaction
from emr.models import Patient
from emr.workflows.outbox import emit
from orders.models import Order
from orders.services import OrderLine, change_status, create_order
from orders.states import OrderKind, OrderStatus, RecoveryStatus
from subscriptions.lifecycle import close_subscription, lock_subscription, set_subscription_status
from subscriptions.models import Plan, RenewalNotice, Subscription, SubscriptionCycle
from subscriptions.recovery import record_failed_attempt
from subscriptions.states import (
    ENDED_STATUSES,
    LIVE_STATUSES,
    BillingInterval,
    CancellationCause,
    SubscriptionStatus,
)

# --- Billing dates --------------------------------------------------------------------------------


def next_period_start(start: datetime, *, plan: Plan, started_at: datetime) -> datetime:
    """The start of the period after the one starting at `start`.

    Monthly plans keep the day of the month they started on where the month has it: a plan
    started on the 31st bills on Feb 28 and then on Mar 31 again, never drifting. A period that
    starts on another day (billing resumed after a pause) keeps its own day from then on.
    """
    if plan.interval == BillingInterval.WEEK:
        return start + timedelta(weeks=plan.interval_count)
    return add_months(start, plan.interval_count, day=_billing_day(start, started_at=started_at))


def add_months(moment: datetime, months: int, *, day: int) -> datetime:
    """`moment` moved by whole months, on `day` or the month's last day if it is shorter."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    return moment.replace(year=year, month=month, day=min(day, _days_in(year, month)))


def _billing_day(start: datetime, *, started_at: datetime) -> int:
    preferred = started_at.day
    on_schedule = start.day == min(preferred, _days_in(start.year, start.month))
    return preferred if on_schedule else start.day


def _days_in(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


# --- Opening the next billing cycle (its order and invoice) ---------------------------------------


def plan_line(plan: Plan, *, quantity: int = 1) -> OrderLine:
    """An order line at the plan's price per cycle (not the product's list price)."""
    return OrderLine(plan.product, quantity, unit_price_cents=plan.price_cents)


def cycle_kind(subscription: Subscription, *, number: int) -> OrderKind:
    """The first cycle ships the treatment; while financed payments remain, later cycles only
    collect money (payment-only recovery cycles); after that each cycle is a regular renewal."""
    if number == 1:
        return OrderKind.SUBSCRIPTION_FIRST
    if subscription.recovery_cycles_remaining > 0:
        return OrderKind.RECOVERY_CYCLE
    return OrderKind.RECURRING


def open_next_cycle(
    subscription: Subscription, *, period_start, actor: Actor, retry_at: datetime | None = None
) -> SubscriptionCycle:
    """Create the next cycle's order (PENDING, invoice SENT) and advance the billing date.

    The caller holds the subscription's row lock inside its transaction and charges the invoice
    after committing. `retry_at`: when the retry sweep takes the order up if its charge never
    got an answer (written with the order, not saved again).
    """
    number = subscription.cycles_billed + 1
    kind = cycle_kind(subscription, number=number)
    order = create_order(
        patient=subscription.patient,
        lines=[plan_line(subscription.plan)],
        actor=actor,
        kind=kind,
        subscription=subscription,
        reason=f"{subscription} cycle {number}",
        recovery_next_retry_at=retry_at,
    )
    cycle = SubscriptionCycle.objects.create(
        subscription=subscription,
        number=number,
        period_start=period_start,
        order=order,
        financed=subscription.recovery_cycles_remaining > 0,
    )
    subscription.cycles_billed = number
    subscription.next_billing_at = next_period_start(
        period_start, plan=subscription.plan, started_at=subscription.started_at
    )
    subscription.save()
    if number > 1:
        emit("subscription.renewal_order_created", subject=order, actor=actor)
    return cycle


# --- Which saved card a subscription is charged to ------------------------------------------------


def billing_card_for(
    subscription: Subscription, *, gateway: str | None = None
) -> PaymentMethod | None:
    """The card to charge now, or None: no compatible payment method (NEEDS_PAYMENT_METHOD).
    `gateway`: the active gateway, when the caller read it already (once per sweep)."""
    gateway = gateway or active_gateway()
    card = subscription.payment_method
    if card is not None and is_chargeable(
        card, patient_id=subscription.patient_id, gateway=gateway
    ):
        return card
    return (
        PaymentMethod.objects.filter(
            patient_id=subscription.patient_id, gateway=gateway, removed_at__isnull=True
        )
        .order_by("-is_default", "-created_at", "-id")
        .first()
    )


def is_chargeable(card: PaymentMethod, *, patient_id: int, gateway: str) -> bool:
    return card.patient_id == patient_id and card.removed_at is None and card.gateway == gateway


def change_card(
    *, subscription: Subscription, card: PaymentMethod, actor: Actor, reason: str
) -> Subscription:
    """Charge `card` from the subscription's next charge on (renewals and recovery retries).

    The card must be another saved card of the same patient, chargeable with the clinic's
    active gateway: a card of another patient would bill one patient for another's care.
    Nothing is charged now; an open recovery invoice waits for its next retry.
    """
    reason = require_reason(reason)
    with service_transaction(actor, reason=reason):
        subscription = lock_subscription(subscription.pk)
        if subscription.status in ENDED_STATUSES:
            raise StateConflict(
                f"This subscription is {subscription.get_status_display().lower()}: nothing "
                "will be charged any more, so its card is not changed.",
                code="subscription.ended",
            )
        check_card_usable(card, patient=subscription.patient)
        if card.pk == subscription.payment_method_id:
            raise InvalidInput(
                "The subscription is already charged to this card.", code="subscription.same_card"
            )
        subscription.payment_method = card
        subscription.save()
    return subscription


def live_subscriptions_paying_with(card: PaymentMethod) -> QuerySet[Subscription]:
    return Subscription.objects.filter(payment_method=card, status__in=LIVE_STATUSES).order_by("pk")


def refuse_removing_a_card_in_use(card: PaymentMethod) -> None:
    """A card a live subscription is charged to stays: its next renewal would find no card."""
    used_by = list(live_subscriptions_paying_with(card)[:3])
    if used_by:
        names = ", ".join(f"{s} ({s.get_status_display().lower()})" for s in used_by)
        raise StateConflict(
            f"{card} pays for subscription {names}, so it cannot be removed: the next renewal "
            "would find no card. Cancel the subscription first, or escalate to billing/admin "
            "to move it to another card.",
            code="payment.card_in_use",
        )


# --- Charging a cycle's invoice, and what the answer means for recovery ---------------------------

logger = logging.getLogger(__name__)

# Refusals that mean "this card cannot be charged here": the patient must add a card.
NO_COMPATIBLE_CARD = frozenset({"payment.gateway_mismatch", "payment.card_not_found"})
# Someone else is charging (or charged) this invoice right now: nothing to do.
ALREADY_HANDLED = frozenset({"invoice.not_payable", "payment.in_progress"})
# Refused before a payment row was written, so billing emitted no `payment.failed`.
REFUSED_BEFORE_PAYMENT_ROW = frozenset({"payment.gateway_not_configured"})


class Outcome(enum.StrEnum):
    PAID = "paid"
    CHARGE_FAILED = "charge_failed"
    NO_CARD = "no_card"
    # The gateway's answer was lost: the payment stays PENDING until billing reconciles it.
    UNKNOWN = "unknown"
    ALREADY_HANDLED = "already_handled"


@dataclass(frozen=True)
class ChargeAttempt:
    outcome: Outcome
    message: str = ""
    error: DomainError | None = None
    # Whether billing already emitted `payment.failed` (it does when it records a FAILED row).
    failure_announced: bool = False

    @property
    def recovery_status(self) -> RecoveryStatus:
        if self.outcome == Outcome.NO_CARD:
            return RecoveryStatus.NEEDS_PAYMENT_METHOD
        return RecoveryStatus.CHARGE_FAILED


NO_CARD_MESSAGE = (
    "No compatible payment method: the patient has no saved card with the clinic's active "
    "gateway. The patient must save a card again (or pay the recovery invoice in the portal)."
)


def charge_order(
    *,
    order: Order,
    card: PaymentMethod | None,
    actor: Actor,
    reason: str,
    gateway: str | None = None,
) -> ChargeAttempt:
    """Charge the order's open invoice with `card`; never raises for a refused charge.
    `gateway`: the clinic's active gateway, when the caller read it already."""
    if card is None:
        return ChargeAttempt(Outcome.NO_CARD, NO_CARD_MESSAGE)
    try:
        charge_invoice(
            invoice=order.invoice,
            payment_method=card,
            actor=actor,
            reason=reason,
            active_gateway_name=gateway,
        )
    except PaymentRequired as declined:
        return ChargeAttempt(
            Outcome.CHARGE_FAILED, declined.detail, declined, failure_announced=True
        )
    except DomainError as error:
        return _sorted_refusal(error)
    return ChargeAttempt(Outcome.PAID)


def _sorted_refusal(error: DomainError) -> ChargeAttempt:
    if error.code in NO_COMPATIBLE_CARD:
        return ChargeAttempt(Outcome.NO_CARD, error.detail, error)
    if error.code in ALREADY_HANDLED:
        return ChargeAttempt(Outcome.ALREADY_HANDLED, error.detail, error)
    if error.code == "payment.outcome_unknown":
        logger.warning("Charge outcome unknown; left for reconciliation: %s", error.detail)
        return ChargeAttempt(Outcome.UNKNOWN, error.detail, error)
    # The gateway failed or refused (auth, not configured, unreachable): retry later.
    return ChargeAttempt(
        Outcome.CHARGE_FAILED,
        error.detail,
        error,
        failure_announced=error.code not in REFUSED_BEFORE_PAYMENT_ROW,
    )


# --- Renewal billing and payment-recovery retries -------------------------------------------------

S = SubscriptionStatus
logger = logging.getLogger(__name__)

# How long a claimed charge may take before the retry sweep assumes its process died.
CHARGE_LEASE = timedelta(minutes=30)
DEFAULT_UPCOMING_RENEWAL_DAYS = 3
PAGE_SIZE = 500

SKIPPED = "skipped"  # claimed by another sweep, or no longer due
EXPIRED = "expired"


@dataclass
class SweepSummary:
    """What one sweep did, by outcome (`paid`, `charge_failed`, `no_card`, `unknown`, …)."""

    as_of: datetime
    outcomes: Counter = field(default_factory=Counter)
    # True when the sweep stopped at its limit with more left to do.
    more_due: bool = False

    def __str__(self) -> str:
        counts = ", ".join(f"{count} {name}" for name, count in sorted(self.outcomes.items()))
        return f"as of {self.as_of.isoformat()}: {counts or 'nothing due'}"


def system_actor(job: str, door: Door = Door.TASK) -> Actor:
    return Actor.system(job, door=door)


# --- Renewals ------------------------------------------------------------------------------


def run_billing_cycle(
    *, as_of: datetime | None = None, actor: Actor | None = None, limit: int | None = None
) -> SweepSummary:
    """Bill (or expire) every ACTIVE subscription due at `as_of`: one cycle each per run."""
    as_of = as_of or timezone.now()
    actor = actor or system_actor("billing-cycle")
    due = Subscription.objects.filter(status=S.ACTIVE, next_billing_at__lte=as_of)
    gateway = active_gateway()  # read once per sweep
    return _sweep(
        due,
        kind="renewal",
        date_field="next_billing_at",
        as_of=as_of,
        limit=limit,
        handle=lambda pk, due_at: renew_subscription(
            subscription_id=pk, due_at=due_at, actor=actor, gateway=gateway
        ),
    )


def renew_subscription(
    *, subscription_id: int, due_at: datetime, actor: Actor, gateway: str | None = None
) -> str:
    """Bill the period starting at `due_at`, unless another sweep has it or already billed it.
    `gateway`: the active gateway, as the sweep read it."""
    claimed = _claim_renewal(
        subscription_id=subscription_id, due_at=due_at, actor=actor, gateway=gateway
    )
    if isinstance(claimed, str):
        return claimed
    order, card = claimed
    attempt = charge_order(
        order=order, card=card, actor=actor, reason="Renewal charge", gateway=gateway
    )
    return _record_attempt(order, attempt, actor=actor)


def _claim_renewal(
    *, subscription_id: int, due_at: datetime, actor: Actor, gateway: str | None = None
):
    """One transaction: the claim, the cycle's order and invoice, and the lease on them.

    The PENDING charge is not written here but by `charge_invoice`, committed just before the
    gateway is called: a claim whose process died before that call leaves no PENDING row, so
    the retry sweep can charge it at the lease's end, while a PENDING row always means "the
    gateway may have been asked" and is left to the charge janitor (never charged twice)."""
    with service_transaction(actor, reason="Subscription renewal", savepoints=False):
        subscription = (
            Subscription.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("plan__product", "patient", "payment_method")
            .filter(pk=subscription_id, status=S.ACTIVE, next_billing_at=due_at)
            .first()
        )
        if subscription is None:
            return SKIPPED
        if subscription.term_complete:
            with acting(actor, reason="Fixed term completed: the last cycle was billed"):
                set_subscription_status(subscription, S.EXPIRED)
            return EXPIRED
        # Saved with the new cycle below (one save of the subscription row).
        card = _card_for(subscription, gateway=gateway, save=False)
        lease = None if card is None else timezone.now() + CHARGE_LEASE
        order = open_next_cycle(
            subscription, period_start=due_at, actor=actor, retry_at=lease
        ).order
        if card is None:
            _record_attempt(order, ChargeAttempt(Outcome.NO_CARD, NO_CARD_MESSAGE), actor=actor)
            return Outcome.NO_CARD
    return order, card


def _card_for(subscription: Subscription, *, gateway: str | None = None, save: bool = True):
    """The card to charge; when the subscription's own card cannot be used and another one can,
    the subscription is moved to it (recorded in its history; `save=False`: the caller saves
    the subscription in this transaction)."""
    card = billing_card_for(subscription, gateway=gateway)
    if card is not None and card.pk != subscription.payment_method_id:
        subscription.payment_method = card
        if save:
            subscription.save()
    return card


def _record_attempt(order: Order, attempt: ChargeAttempt, *, actor: Actor) -> str:
    if attempt.outcome in {Outcome.CHARGE_FAILED, Outcome.NO_CARD}:
        record_failed_attempt(
            order=order,
            status=attempt.recovery_status,
            message=attempt.message,
            failure_announced=attempt.failure_announced,
            actor=actor,
        )
    # PAID: billing recorded it and `recovery.reactivate_after_payment` did the rest.
    # UNKNOWN: billing reconciles the payment; the lease brings the order back to the retry sweep.
    return attempt.outcome


# --- Retries -------------------------------------------------------------------------------


def retry_recovery_charges(
    *, as_of: datetime | None = None, actor: Actor | None = None, limit: int | None = None
) -> SweepSummary:
    """Charge again every subscription order whose next attempt is due (payment recovery, or a
    renewal charge whose process died), with the same card rules as the renewal."""
    as_of = as_of or timezone.now()
    actor = actor or system_actor("payment-recovery")
    due = Order.objects.filter(
        subscription__isnull=False,
        subscription__status__in=[S.ACTIVE, S.PAUSED],
        recovery_next_retry_at__lte=as_of,
        invoice__status=InvoiceStatus.SENT,
    )
    gateway = active_gateway()  # read once per sweep
    return _sweep(
        due,
        kind="recovery_retry",
        date_field="recovery_next_retry_at",
        as_of=as_of,
        limit=limit,
        handle=lambda pk, due_at: retry_order(
            order_id=pk, due_at=due_at, actor=actor, gateway=gateway
        ),
    )


def retry_order(
    *, order_id: int, due_at: datetime, actor: Actor, gateway: str | None = None
) -> str:
    claimed = _claim_retry(order_id=order_id, due_at=due_at, actor=actor, gateway=gateway)
    if isinstance(claimed, str):
        return claimed
    order, card = claimed
    attempt = charge_order(
        order=order, card=card, actor=actor, reason="Payment recovery retry", gateway=gateway
    )
    return _record_attempt(order, attempt, actor=actor)


def _claim_retry(*, order_id: int, due_at: datetime, actor: Actor, gateway: str | None = None):
    with service_transaction(actor, reason="Payment recovery retry", savepoints=False):
        order = (
            Order.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("invoice")
            .filter(pk=order_id, recovery_next_retry_at=due_at)
            .first()
        )
        if order is None:
            return SKIPPED
        subscription = lock_subscription(order.subscription_id)
        if order.invoice.status != InvoiceStatus.SENT or subscription.status not in {
            S.ACTIVE,
            S.PAUSED,
        }:
            order.recovery_next_retry_at = None
            order.save(update_fields=["recovery_next_retry_at", "updated_at"])
            return SKIPPED
        card = _card_for(subscription, gateway=gateway)
        if card is None:
            _record_attempt(order, ChargeAttempt(Outcome.NO_CARD, NO_CARD_MESSAGE), actor=actor)
            return Outcome.NO_CARD
        order.recovery_next_retry_at = timezone.now() + CHARGE_LEASE
        order.save(update_fields=["recovery_next_retry_at", "updated_at"])
    return order, card


# --- Upcoming-renewal notices --------------------------------------------------------------


def send_upcoming_renewal_notices(
    *, as_of: datetime | None = None, actor: Actor | None = None
) -> int:
    """Emit `subscription.upcoming_renewal` once per renewal, `UPCOMING_RENEWAL_DAYS` ahead."""
    as_of = as_of or timezone.now()
    actor = actor or system_actor("upcoming-renewals")
    days = getattr(settings, "UPCOMING_RENEWAL_DAYS", DEFAULT_UPCOMING_RENEWAL_DAYS)
    already_sent = RenewalNotice.objects.filter(
        subscription=OuterRef("pk"), renews_at=OuterRef("next_billing_at")
    )
    upcoming = (
        Subscription.objects.filter(
            status=S.ACTIVE,
            next_billing_at__gt=as_of,
            next_billing_at__lte=as_of + timedelta(days=days),
        )
        # A fixed-term subscription past its last cycle ends on that date; it does not renew.
        .filter(Q(plan__term_cycles__isnull=True) | Q(cycles_billed__lt=F("plan__term_cycles")))
        .exclude(Exists(already_sent))
        .order_by("next_billing_at", "pk")
        .values_list("pk", "next_billing_at")
    )
    sent = 0
    for subscription_id, renews_at in upcoming:
        sent += _notify_upcoming_renewal(subscription_id, renews_at=renews_at, actor=actor)
    return sent


def _notify_upcoming_renewal(subscription_id: int, *, renews_at: datetime, actor: Actor) -> int:
    with service_transaction(actor, reason="Upcoming renewal notice"):
        subscription = (
            Subscription.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("plan", "patient")
            .filter(pk=subscription_id, status=S.ACTIVE, next_billing_at=renews_at)
            .first()
        )
        if subscription is None:
            return 0
        _, created = RenewalNotice.objects.get_or_create(
            subscription=subscription, renews_at=renews_at
        )
        if created:
            emit("subscription.upcoming_renewal", subject=subscription, actor=actor)
        return int(created)


# --- The sweep loop ------------------------------------------------------------------------


def _sweep(
    due: QuerySet,
    *,
    kind: str,
    date_field: str,
    as_of: datetime,
    limit: int | None,
    handle: Callable[[int, datetime], str],
) -> SweepSummary:
    """Handle every due row once, in due-date order, each in its own short transaction."""
    summary = SweepSummary(as_of=as_of)
    worked = 0
    for pk, due_at in _due_rows(due, date_field=date_field):
        if limit is not None and worked >= limit:
            summary.more_due = True
            break
        try:
            outcome = str(handle(pk, due_at))
        except DomainError as refused:
            # Nothing was written (its transaction rolled back) and the row stays due; one
            # subscription that cannot be billed (an inactive product …) never stops the others.
            logger.warning("%s %s not billed: %s", due.model.__name__, pk, refused)
            outcome = f"refused:{refused.code}"
        summary.outcomes[outcome] += 1
        metrics.RENEWALS.labels(kind, outcome).inc()
        # The limit counts real work only, so rows that are refused every time can never fill
        # a batch and keep the rest waiting.
        if outcome != SKIPPED and not outcome.startswith("refused:"):
            worked += 1
    return summary


def _due_rows(due: QuerySet, *, date_field: str) -> Iterator[tuple[int, datetime]]:
    """(pk, due date) pages in (due date, pk) order. Keyset paging, so a row whose date moves
    on while the sweep runs is seen once, and a page costs the same at any depth."""
    ordered = due.order_by(date_field, "pk").values_list("pk", date_field)
    seen: set[int] = set()
    last = None
    while True:
        page = ordered
        if last is not None:
            after_date = Q(**{f"{date_field}__gt": last[1]})
            same_date = Q(**{date_field: last[1], "pk__gt": last[0]})
            page = page.filter(after_date | same_date)
        rows = list(page[:PAGE_SIZE])
        if not rows:
            return
        for pk, due_at in rows:
            if pk not in seen:  # billed this run and due again (overdue): next run's turn
                seen.add(pk)
                yield pk, due_at
        last = rows[-1]


# --- Starting a subscription: its first cycle, charged --------------------------------------------

NEVER_STARTED = "First payment failed: the subscription never started"


def start_subscription(
    *, patient: Patient, plan: Plan, payment_method: PaymentMethod, actor: Actor
) -> Subscription:
    """A new subscription, ACTIVE with its first order and invoice paid.

    Raises the charge's error (402 `payment.declined`, 409 `payment.gateway_mismatch`, 502 …)
    when the first payment fails; the subscription is then closed as never started.
    """
    check_plan_available(plan)
    check_card_usable(payment_method, patient=patient)
    subscription = create_awaiting_first_payment(
        patient=patient, plan=plan, payment_method=payment_method, actor=actor
    )
    first_order = first_order_of(subscription)
    attempt = charge_order(
        order=first_order, card=payment_method, actor=actor, reason="First subscription payment"
    )
    if attempt.outcome in {Outcome.PAID, Outcome.ALREADY_HANDLED}:
        return Subscription.objects.select_related("plan").get(pk=subscription.pk)
    if attempt.outcome == Outcome.UNKNOWN:
        # Left PAUSED: it activates when billing learns the charge succeeded.
        raise attempt.error
    close_never_started(subscription, actor=actor, detail=attempt.message)
    raise with_sentence(attempt.error, "No subscription was started.")


def check_plan_available(plan: Plan) -> None:
    if not plan.active or not plan.product.active:
        raise InvalidInput(
            f"{plan.name} is no longer offered: choose an active plan.", code="plan.inactive"
        )


def check_card_usable(card: PaymentMethod, *, patient: Patient) -> None:
    if card.patient_id != patient.pk or card.removed_at is not None:
        raise InvalidInput(
            "That saved card does not belong to this patient (or was removed).",
            code="payment.card_not_found",
        )
    gateway = active_gateway()
    if not is_chargeable(card, patient_id=patient.pk, gateway=gateway):
        raise StateConflict(
            f"This card is saved in the {card.get_gateway_display()} vault, but the clinic now "
            f"charges through {Gateway(gateway).label}: no compatible payment method. Save the "
            "card again with the active gateway.",
            code="payment.gateway_mismatch",
        )


def create_awaiting_first_payment(
    *, patient: Patient, plan: Plan, payment_method: PaymentMethod, actor: Actor
) -> Subscription:
    """The subscription (PAUSED, awaiting its first payment) and its first order, committed."""
    with (
        service_transaction(actor, reason=f"Subscription to {plan.name} started"),
    ):
        now = timezone.now()
        subscription = Subscription.objects.create(
            patient=patient,
            plan=plan,
            payment_method=payment_method,
            status=SubscriptionStatus.PAUSED,
            awaiting_payment=True,
            started_at=now,
        )
        open_next_cycle(subscription, period_start=now, actor=actor)
    return subscription


def first_order_of(subscription: Subscription) -> Order:
    return (
        Order.objects.select_related("invoice")
        .filter(subscription_cycle__subscription=subscription, subscription_cycle__number=1)
        .get()
    )


def close_never_started(subscription: Subscription, *, actor: Actor, detail: str) -> None:
    """Its first payment failed: close the unpaid first order and the subscription."""
    reason = f"{NEVER_STARTED}. {detail}".strip()[:500]
    with service_transaction(actor, reason=reason):
        order = first_order_of(subscription)
        if order.status in {OrderStatus.PENDING, OrderStatus.AWAITING_PAYMENT}:
            change_status(order=order, target=OrderStatus.CANCELLED, actor=actor, reason=reason)
        subscription = lock_subscription(subscription.pk)
        if subscription.status != SubscriptionStatus.CANCELLED:
            close_subscription(subscription, cause=CancellationCause.NOT_STARTED, actor=actor)


def with_sentence(error: DomainError, sentence: str) -> DomainError:
    """The same refusal (type, code, HTTP status) with one more sentence for the reader."""
    return type(error)(f"{error.detail} {sentence}", code=error.code)
