"""Billing tests run the real flow against the local gateway servers: our Stripe fake (refund
semantics localstripe lacks) and the NMI fake. Nothing of ours is patched."""

import os

import pytest
from django.conf import settings as django_settings

from audit.actors import Actor, Door
from billing import payments
from orders.models import Order
from tests.factories import PatientFactory, ProductFactory, make_order
from tests.fixtures.gateways import NMI_CARD, STRIPE_CARD


@pytest.fixture
def system():
    return Actor.system("billing-tests", door=Door.SHELL)


@pytest.fixture
def paid_order(gateways, system):
    """paid_order("stripe" | "nmi", cents) -> an order paid through that gateway."""

    def pay(gateway: str, cents: int = 12000) -> Order:
        payments.set_active_gateway(gateway=gateway, actor=system, reason="test setup")
        patient = PatientFactory()
        card = payments.save_card(
            patient=patient,
            gateway=gateway,
            token=STRIPE_CARD if gateway == "stripe" else NMI_CARD,
            actor=system,
        )
        order = make_order(patient=patient, products=[ProductFactory(price_cents=cents)])
        payments.charge_invoice(invoice=order.invoice, payment_method=card, actor=system)
        return Order.objects.get(pk=order.pk)

    return pay


def subprocess_env(**extra) -> dict:
    """Environment for a `manage.py` child process that uses the test database and servers."""
    database = django_settings.DATABASES["default"]
    url = (
        f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )
    return {
        **os.environ,
        "DATABASE_URL": url,
        "STRIPE_SECRET_KEY": django_settings.STRIPE_SECRET_KEY,
        "STRIPE_API_BASE": django_settings.STRIPE_API_BASE,
        "NMI_SECURITY_KEY": django_settings.NMI_SECURITY_KEY,
        "NMI_API_URL": django_settings.NMI_API_URL,
        "NMI_QUERY_URL": django_settings.NMI_QUERY_URL,
        **extra,
    }
