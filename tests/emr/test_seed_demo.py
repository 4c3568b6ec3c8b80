import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from billing.models import Payment
from orders.models import Order
from orders.states import OrderStatus
from subscriptions.models import Subscription
from subscriptions.states import SubscriptionStatus

pytestmark = pytest.mark.django_db


def test_seed_demo_covers_every_status_and_is_idempotent(gateways, capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out

    assert set(Order.objects.values_list("status", flat=True)) == set(OrderStatus.values)
    assert set(Subscription.objects.values_list("status", flat=True)) == set(
        SubscriptionStatus.values
    )
    assert {"cs", "billing", "medops", "admin"} <= set(
        User.objects.values_list("username", flat=True)
    )
    assert "demo-cs-pass" in first
    # Money really went through the local gateways: real transaction ids, both gateways used.
    charges = Payment.objects.filter(kind="CHARGE", status="SUCCEEDED")
    assert {payment.gateway for payment in charges} == {"stripe", "nmi"}
    assert all(payment.transaction_id for payment in charges)
    refunded = Order.objects.get(status=OrderStatus.REFUNDED)
    assert refunded.invoice.status == "CANCELLED"
    assert len(gateways.stripe.refunds()) == 1

    counts = (Order.objects.count(), Payment.objects.count(), Subscription.objects.count())
    call_command("seed_demo")
    assert "already present" in capsys.readouterr().out
    assert (Order.objects.count(), Payment.objects.count(), Subscription.objects.count()) == counts


def test_seed_demo_explains_missing_gateways(settings, db):
    settings.STRIPE_SECRET_KEY = ""
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="make run"):
        call_command("seed_demo")
