"""The subscription tools in the admin call the same services as the API."""

import pytest
from django.urls import reverse

from subscriptions.models import Subscription
from subscriptions.states import SubscriptionStatus
from tests.admin_tools import confirm_action
from tests.subscriptions.conftest import make_plan

pytestmark = pytest.mark.django_db


def _switch(client, subscription, plan):
    return confirm_action(
        client,
        reverse("admin:subscriptions_subscription_changelist"),
        {
            "action": "switch_plan",
            "_selected_action": [subscription.pk],
            "confirm": "yes",
            "target": str(plan.pk),
            "reason": "Patient moves to the weekly plan",
        },
        follow=True,
    )


def test_a_billing_admin_switches_a_plan_from_the_admin(subscribe, billing_admin, admin_client_for):
    old = subscribe()
    new_plan = make_plan(price_cents=4900, name="Weekly care")

    page = _switch(admin_client_for(billing_admin), old, new_plan).content.decode()

    assert str(old) in page.split('class="messagelist"')[1]  # the result names it
    old.refresh_from_db()
    assert old.status == SubscriptionStatus.CANCELLED  # only after the replacement was charged
    replacement = Subscription.objects.exclude(pk=old.pk).get(patient=old.patient)
    assert (replacement.plan, replacement.status) == (new_plan, SubscriptionStatus.ACTIVE)


def test_cs_may_not_switch_plans(subscribe, cs_user, admin_client_for):
    old = subscribe()
    page = _switch(admin_client_for(cs_user), old, make_plan()).content.decode()
    assert "does not allow" in page
    assert Subscription.objects.get(pk=old.pk).status == SubscriptionStatus.ACTIVE
    assert Subscription.objects.filter(patient=old.patient).count() == 1
