"""Renewal billing and payment-recovery retries.

`run_billing_cycle(as_of=…)` (beat, and `manage.py run_billing_cycle`) bills every subscription
whose next billing date has come: it opens the cycle (order + invoice, next date advanced) and
charges the saved card of the active gateway. A failed charge, or no compatible card, sends the
order into payment recovery and pauses the subscription (`recovery.record_failed_attempt`);
`retry_recovery_charges` retries on the `RECOVERY_RETRY_DAYS` schedule with the same card rules.
A fixed-term subscription whose last cycle was billed expires on its end date instead.

Never twice for one period:
- each due subscription is claimed with `SELECT … FOR UPDATE SKIP LOCKED` *and* the billing date
  the sweep saw, so a concurrent sweep skips it and a later one finds the date moved on;
- the cycle row's unique (subscription, number) and (subscription, period_start) make a second
  order for the same period impossible in the database itself;
- the gateway is called after the claim commits, never inside it; billing keeps the charge of
  one invoice at most once.
The claim also sets the order's next charge attempt a lease ahead, so a sweep that dies between
claim and charge leaves an order the retry sweep charges later, never an unbilled period.
"""

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from billing.states import InvoiceStatus
from emr.kernel.actors import Actor, Door, acting
from emr.kernel.errors import DomainError
from emr.kernel.services import service_transaction
from emr.workflows.outbox import emit
from orders.models import Order
from subscriptions.cards import billing_card_for
from subscriptions.charging import NO_CARD_MESSAGE, ChargeAttempt, Outcome, charge_order
from subscriptions.cycles import open_next_cycle
from subscriptions.models import RenewalNotice, Subscription
from subscriptions.recovery import record_failed_attempt
from subscriptions.services import lock_subscription, set_subscription_status
from subscriptions.states import SubscriptionStatus

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
    return _sweep(
        due,
        date_field="next_billing_at",
        as_of=as_of,
        limit=limit,
        handle=lambda pk, due_at: renew_subscription(
            subscription_id=pk, due_at=due_at, actor=actor
        ),
    )


def renew_subscription(*, subscription_id: int, due_at: datetime, actor: Actor) -> str:
    """Bill the period starting at `due_at`, unless another sweep has it or already billed it."""
    claimed = _claim_renewal(subscription_id=subscription_id, due_at=due_at, actor=actor)
    if isinstance(claimed, str):
        return claimed
    order, card = claimed
    attempt = charge_order(order=order, card=card, actor=actor, reason="Renewal charge")
    return _record_attempt(order, attempt, actor=actor)


def _claim_renewal(*, subscription_id: int, due_at: datetime, actor: Actor):
    with service_transaction(actor, reason="Subscription renewal"):
        subscription = (
            Subscription.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("plan__product", "patient")
            .filter(pk=subscription_id, status=S.ACTIVE, next_billing_at=due_at)
            .first()
        )
        if subscription is None:
            return SKIPPED
        if subscription.term_complete:
            with acting(actor, reason="Fixed term completed: the last cycle was billed"):
                set_subscription_status(subscription, S.EXPIRED)
            return EXPIRED
        card = _card_for(subscription)
        order = open_next_cycle(subscription, period_start=due_at, actor=actor).order
        if card is None:
            _record_attempt(order, ChargeAttempt(Outcome.NO_CARD, NO_CARD_MESSAGE), actor=actor)
            return Outcome.NO_CARD
        order.recovery_next_retry_at = timezone.now() + CHARGE_LEASE
        order.save(update_fields=["recovery_next_retry_at", "updated_at"])
    return order, card


def _card_for(subscription: Subscription):
    """The card to charge; when the subscription's own card cannot be used and another one can,
    the subscription is moved to it (recorded in its history)."""
    card = billing_card_for(subscription)
    if card is not None and card.pk != subscription.payment_method_id:
        subscription.payment_method = card
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
    return _sweep(
        due,
        date_field="recovery_next_retry_at",
        as_of=as_of,
        limit=limit,
        handle=lambda pk, due_at: retry_order(order_id=pk, due_at=due_at, actor=actor),
    )


def retry_order(*, order_id: int, due_at: datetime, actor: Actor) -> str:
    claimed = _claim_retry(order_id=order_id, due_at=due_at, actor=actor)
    if isinstance(claimed, str):
        return claimed
    order, card = claimed
    attempt = charge_order(order=order, card=card, actor=actor, reason="Payment recovery retry")
    return _record_attempt(order, attempt, actor=actor)


def _claim_retry(*, order_id: int, due_at: datetime, actor: Actor):
    with service_transaction(actor, reason="Payment recovery retry"):
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
        card = _card_for(subscription)
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
