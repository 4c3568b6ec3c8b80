import pytest
from django.contrib.auth.models import User

from billing.refunds import refund_order
from orders.models import Order


@pytest.fixture
def refunded_order(paid_order, system):
    """An order paid through the Stripe fake, then refunded through the refund flow."""
    order = paid_order("stripe", 12000)
    refund_order(order=order, actor=system, reason="Patient cancelled within the window")
    return Order.objects.get(pk=order.pk)


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root-admin", "root@clinic.test", "test-pass-123")
