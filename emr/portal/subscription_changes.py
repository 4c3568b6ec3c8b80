"""A patient changes their own subscription: cancel, pause, resume, or, while a financed
balance remains, schedule a cancellation (and withdraw it) — the operations guide's
"Subscription Cancellation", "Patient Cancellation Limits" and "Scheduled Subscription
Cancellation".

Before the patient confirms, the portal shows what will and will not happen, in the guide's
words. The change itself is the lifecycle service staff use, acting as the patient: its policy
(`subscriptions.lifecycle.check_may_stop`) refuses to stop a subscription early while a
financed balance remains, exactly as it does for CS. What the patient read is recorded in the
same transaction as the change, with its SHA-256, when, and from which address and browser.
"""

import hashlib
from dataclasses import dataclass

from django.utils.dateformat import format as format_date

from emr.kernel.actors import Actor
from emr.kernel.errors import StateConflict
from emr.kernel.money import format_cents
from emr.kernel.services import service_transaction
from emr.models import Patient
from emr.portal.models import ConsequencesAcknowledgement, SubscriptionChange
from emr.portal.scope import own_subscription
from subscriptions import lifecycle
from subscriptions.models import Subscription
from subscriptions.states import ENDED_STATUSES, BillingInterval, SubscriptionStatus

C = SubscriptionChange
S = SubscriptionStatus

REASONS = {
    C.CANCEL: "Cancelled by the patient in the portal",
    C.PAUSE: "Paused by the patient in the portal",
    C.RESUME: "Resumed by the patient in the portal",
    C.SCHEDULE_CANCELLATION: "Cancellation scheduled by the patient in the portal",
    C.WITHDRAW_CANCELLATION: "Scheduled cancellation withdrawn by the patient in the portal",
}

_SERVICES = {
    C.CANCEL: lifecycle.cancel_subscription,
    C.PAUSE: lifecycle.pause_subscription,
    C.RESUME: lifecycle.resume_subscription,
    C.SCHEDULE_CANCELLATION: lifecycle.schedule_cancellation,
    C.WITHDRAW_CANCELLATION: lifecycle.withdraw_scheduled_cancellation,
}

PAUSED_FOR_PAYMENT = (
    "Your subscription is paused because a payment did not go through. Paying the open "
    "invoice resumes it."
)
_NOT_REFUNDED = (
    "Cancelling stops future billing. It does not refund your last charge or any earlier one: "
    "a refund is a separate decision under the clinic's refund policy."
)
_ORDERS_GO_ON = (
    "It does not cancel orders you have already paid for, and it does not stop a shipment "
    "already on its way."
)


@dataclass(frozen=True)
class Consequences:
    """What the patient reads before confirming a change; `text` is what is recorded."""

    change: SubscriptionChange
    title: str
    will: tuple[str, ...]
    will_not: tuple[str, ...]
    confirm_label: str
    preface: str = ""

    @property
    def text(self) -> str:
        lines = [self.title]
        if self.preface:
            lines.append(self.preface)
        lines.append("What will happen:")
        lines += [f"- {line}" for line in self.will]
        lines.append("What will not happen:")
        lines += [f"- {line}" for line in self.will_not]
        return "\n".join(lines)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class Offer:
    """The changes the patient may ask for now, and why others are not offered."""

    changes: tuple[SubscriptionChange, ...]
    notes: tuple[str, ...]


def available_changes(subscription: Subscription, *, actor: Actor) -> Offer:
    """What the lifecycle policy allows this patient now (the page offers only these; the
    lifecycle service decides again when they confirm)."""
    if subscription.status in ENDED_STATUSES:
        return Offer((), ())
    if subscription.has_scheduled_cancellation:
        return Offer((C.WITHDRAW_CANCELLATION,), ())
    changes, notes = [], []
    try:
        lifecycle.check_may_stop(subscription, actor=actor, action="cancel")
        changes.append(C.CANCEL)
    except StateConflict as refusal:
        notes.append(refusal.detail)
        changes.append(C.SCHEDULE_CANCELLATION)
    if subscription.status == S.ACTIVE and C.CANCEL in changes:
        changes.append(C.PAUSE)  # the same balance rule holds pausing back
    if subscription.status == S.PAUSED:
        if subscription.awaiting_payment:
            notes.append(PAUSED_FOR_PAYMENT)
        else:
            changes.append(C.RESUME)
    return Offer(tuple(changes), tuple(notes))


def price_words(subscription: Subscription) -> str:
    plan = subscription.plan
    unit = "week" if plan.interval == BillingInterval.WEEK else "month"
    every = f"every {plan.interval_count} {unit}s" if plan.interval_count > 1 else f"every {unit}"
    return f"{format_cents(plan.price_cents, plan.currency)} {every}"


def consequences(subscription: Subscription, change: SubscriptionChange) -> Consequences:
    plan = subscription.plan.name
    next_charge = subscription.next_billing_at
    if change == C.CANCEL:
        open_invoices = [invoice.number for invoice in lifecycle.open_cycle_invoices(subscription)]
        will_not = [_NOT_REFUNDED, _ORDERS_GO_ON]
        if open_invoices:
            will_not.append(
                f"It does not close the open invoice {', '.join(open_invoices)}: it stays open "
                "until it is paid or the clinic closes it."
            )
        will_not.append(
            "A cancelled subscription cannot be restarted. To continue later, you would start a "
            "new subscription."
        )
        return Consequences(
            change=change,
            title=f"Cancel your {plan} subscription now",
            will=(
                "Your subscription is cancelled today.",
                "Future billing stops: "
                + (
                    f"the charge planned for {_day(next_charge)} will not be made, nor any "
                    "after it."
                    if next_charge
                    else "you will not be charged for this subscription again."
                ),
                "Questionnaires you have not filled in yet, for orders that will not go ahead, "
                "are withdrawn.",
            ),
            will_not=tuple(will_not),
            confirm_label="Cancel my subscription",
        )
    if change == C.PAUSE:
        return Consequences(
            change=change,
            title=f"Pause your {plan} subscription",
            will=(
                "Billing stops while the subscription is paused"
                + (
                    f": the charge planned for {_day(next_charge)} will not be made."
                    if next_charge
                    else "."
                ),
                "You can resume it on this page whenever you like. Billing starts again from "
                "the day you resume; the paused time is never billed.",
            ),
            will_not=("Pausing does not refund any past charge.", _ORDERS_GO_ON),
            confirm_label="Pause my subscription",
        )
    if change == C.RESUME:
        return Consequences(
            change=change,
            title=f"Resume your {plan} subscription",
            will=(
                "Your subscription becomes active again, and billing starts again from today.",
                f"You are charged {price_words(subscription)} again, on each billing date.",
            ),
            will_not=("You are not charged for the time it was paused.",),
            confirm_label="Resume my subscription",
        )
    if change == C.SCHEDULE_CANCELLATION:
        remaining = subscription.recovery_cycles_remaining
        price = format_cents(subscription.plan.price_cents, subscription.plan.currency)
        total = format_cents(subscription.recovery_balance_cents, subscription.plan.currency)
        payments = f"{remaining} payment{'s' if remaining != 1 else ''}"
        return Consequences(
            change=change,
            title=f"Schedule the cancellation of your {plan} subscription",
            preface=lifecycle.RECOVERY_BALANCE_EXPLANATION,
            will=(
                "Your cancellation request is stored today.",
                f"Your remaining {payments} of {price} ({total} in all) are still charged on "
                "their usual dates.",
                "After the final payment, the subscription is cancelled and billing stops.",
                "Until then, you can withdraw the request on this page.",
            ),
            will_not=(
                "Scheduling does not cancel the subscription today, and it does not reduce, "
                "refund or waive what remains to pay.",
                "Nothing is refunded when the cancellation takes effect.",
                "Once it takes effect, the subscription cannot be restarted.",
            ),
            confirm_label="Schedule my cancellation",
        )
    return Consequences(
        change=change,
        title=f"Keep your {plan} subscription",
        will=(
            "Your cancellation request is withdrawn: the subscription goes on after your final "
            "financed payment, and keeps renewing until you cancel it.",
        ),
        will_not=("Nothing is charged today because of this.",),
        confirm_label="Withdraw my cancellation request",
    )


def confirm_change(
    *,
    patient: Patient,
    number: str,
    change: SubscriptionChange,
    shown_sha256: str,
    actor: Actor,
    ip_address: str | None,
    user_agent: str,
) -> Subscription:
    """Make the change the patient confirmed, through the lifecycle service, and record what
    they were shown. Refused, with nothing written, when the text they read is no longer
    what the change would do (the subscription changed meanwhile) or the policy says no."""
    subscription = own_subscription(
        patient, number, queryset=Subscription.objects.select_related("plan")
    )
    reason = REASONS[change]
    with service_transaction(actor, reason=reason):
        shown = consequences(subscription, change)
        if shown.sha256 != shown_sha256:
            raise StateConflict(
                "Your subscription changed since you opened this page. Read what will happen "
                "now, then confirm again.",
                code="portal.consequences_changed",
            )
        changed = _SERVICES[change](subscription=subscription, actor=actor, reason=reason)
        ConsequencesAcknowledgement.objects.create(
            patient=patient,
            subscription=subscription,
            change=change,
            shown_text=shown.text,
            shown_sha256=shown.sha256,
            ip_address=ip_address or None,
            user_agent=(user_agent or "")[:300],
        )
    return changed


def _day(moment) -> str:
    return format_date(moment, "j M Y")
