"""Every write to a subscription goes through here, shared by admin, API, portal and tasks."""

from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.context import acting
from emr.errors import InvalidInput
from subscriptions.models import Subscription
from subscriptions.states import SubscriptionStatus


def lock_subscription(subscription_id: int) -> Subscription:
    return Subscription.objects.select_for_update().select_related("plan").get(pk=subscription_id)


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why: a reason is required.", code="reason_required")
    return reason


def set_subscription_status(subscription: Subscription, target: str) -> Subscription:
    """Move a locked subscription along its transition table."""
    subscription.transitions.check(subscription.status, target)
    subscription.status = target
    if target == SubscriptionStatus.CANCELLED:
        subscription.cancelled_at = timezone.now()
    if target in {SubscriptionStatus.CANCELLED, SubscriptionStatus.EXPIRED}:
        # Future billing stops: nothing is due any more.
        subscription.next_billing_at = None
    subscription.save()
    return subscription


def cancel_subscription(*, subscription: Subscription, actor: Actor, reason: str) -> Subscription:
    reason = _require_reason(reason)
    with transaction.atomic(), acting(actor, reason=reason):
        subscription = lock_subscription(subscription.pk)
        return set_subscription_status(subscription, SubscriptionStatus.CANCELLED)


def pause_subscription(*, subscription: Subscription, actor: Actor, reason: str) -> Subscription:
    reason = _require_reason(reason)
    with transaction.atomic(), acting(actor, reason=reason):
        subscription = lock_subscription(subscription.pk)
        return set_subscription_status(subscription, SubscriptionStatus.PAUSED)


def resume_subscription(*, subscription: Subscription, actor: Actor, reason: str) -> Subscription:
    reason = _require_reason(reason)
    with transaction.atomic(), acting(actor, reason=reason):
        subscription = lock_subscription(subscription.pk)
        return set_subscription_status(subscription, SubscriptionStatus.ACTIVE)


def expire_subscription(*, subscription: Subscription, actor: Actor, reason: str) -> Subscription:
    """A fixed-term subscription reached its end date."""
    reason = _require_reason(reason)
    with transaction.atomic(), acting(actor, reason=reason):
        subscription = lock_subscription(subscription.pk)
        return set_subscription_status(subscription, SubscriptionStatus.EXPIRED)
