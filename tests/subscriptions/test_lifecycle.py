import pytest
from django.urls import reverse

from emr.kernel.actors import Actor, Door
from emr.kernel.errors import InvalidTransition
from subscriptions import lifecycle
from subscriptions.models import Subscription
from subscriptions.states import SubscriptionStatus
from tests.admin_tools import confirm_action
from tests.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor(billing_admin):
    return Actor.staff(billing_admin, door=Door.API)


@pytest.fixture
def cancelled(actor):
    subscription = SubscriptionFactory()
    return lifecycle.cancel_subscription(
        subscription=subscription, actor=actor, reason="Patient asked to stop"
    )


def test_cancel_sets_cancelled_at_stops_billing_and_records_who(cancelled):
    cancelled.refresh_from_db()
    assert cancelled.status == SubscriptionStatus.CANCELLED
    assert cancelled.cancelled_at is not None
    assert cancelled.next_billing_at is None
    last = cancelled.history.latest("history_id")
    assert (last.history_actor, last.history_change_reason) == (
        "billing-admin",
        "Patient asked to stop",
    )


@pytest.mark.parametrize(
    "service",
    [lifecycle.resume_subscription, lifecycle.pause_subscription, lifecycle.cancel_subscription],
)
def test_cancelled_subscription_refuses_every_service(cancelled, actor, service):
    with pytest.raises(InvalidTransition) as refused:
        service(subscription=cancelled, actor=actor, reason="try again")
    assert refused.value.code == "subscription.already_cancelled"
    assert "cannot be reactivated" in refused.value.detail
    assert Subscription.objects.get(pk=cancelled.pk).status == SubscriptionStatus.CANCELLED


def test_cancelled_subscription_refuses_a_raw_save(cancelled):
    subscription = Subscription.objects.get(pk=cancelled.pk)
    subscription.status = SubscriptionStatus.ACTIVE
    with pytest.raises(InvalidTransition):
        subscription.save()
    assert Subscription.objects.get(pk=cancelled.pk).status == SubscriptionStatus.CANCELLED


def test_cancelled_subscription_refuses_the_admin_resume(
    cancelled, billing_admin, admin_client_for
):
    response = confirm_action(
        admin_client_for(billing_admin),
        reverse("admin:subscriptions_subscription_changelist"),
        {
            "action": "resume",
            "_selected_action": [cancelled.pk],
            "confirm": "yes",
            "reason": "Patient wants it back",
        },
        follow=True,
    )
    assert "cannot be reactivated" in response.content.decode()
    assert Subscription.objects.get(pk=cancelled.pk).status == SubscriptionStatus.CANCELLED


def test_pause_and_resume(actor):
    subscription = SubscriptionFactory()
    lifecycle.pause_subscription(subscription=subscription, actor=actor, reason="Travelling")
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.PAUSED
    lifecycle.resume_subscription(subscription=subscription, actor=actor, reason="Back home")
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.ACTIVE
