"""Subscription tests run the real flow against the local gateway servers (our Stripe fake and
the NMI fake) with the clock under control (time-machine). Nothing of ours is patched."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User

from billing import payments
from billing.models import PaymentMethod
from emr.kernel.actors import Actor, Door
from orders.models import ProductKind
from subscriptions.billing_cycle import start_subscription
from subscriptions.models import Plan, Subscription
from subscriptions.states import BillingInterval
from tests.factories import PatientFactory, ProductFactory
from tests.fixtures.gateways import NMI_CARD, STRIPE_CARD

# A Thursday morning in January; month-end cases pick their own dates.
START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
DECLINING_STRIPE_CARD = "pm_card_chargeCustomerFail"  # saves, then every charge is declined


@pytest.fixture
def system():
    return Actor.system("subscription-tests", door=Door.SHELL)


@pytest.fixture
def cs(cs_user):
    return Actor.staff(cs_user, door=Door.ADMIN)


@pytest.fixture
def admin(billing_admin):
    return Actor.staff(billing_admin, door=Door.ADMIN)


@pytest.fixture
def clock(time_machine):
    """The clock, stopped at START; `clock.move_to(...)` / `clock.shift(...)` move it."""
    time_machine.move_to(START, tick=False)
    return time_machine


def patient_actor(patient) -> Actor:
    """The patient acting in the portal (their own login)."""
    if patient.user is None:
        patient.user = User.objects.create(username=f"patient-{patient.pk}")
        patient.save()
    return Actor.patient(patient.user)


def make_plan(*, price_cents=9900, **fields) -> Plan:
    """A monthly plan (its product's list price differs: orders bill the plan's price)."""
    product = ProductFactory(kind=ProductKind.MEMBERSHIP, price_cents=price_cents + 1000)
    defaults = {"name": f"Plan {product.pk}", "interval": BillingInterval.MONTH}
    return Plan.objects.create(product=product, price_cents=price_cents, **(defaults | fields))


def save_card(patient, *, gateway="stripe", token=None, actor=None):
    token = token or (STRIPE_CARD if gateway == "stripe" else NMI_CARD)
    actor = actor or Actor.system("card-setup", door=Door.SHELL)
    return payments.save_card(patient=patient, gateway=gateway, token=token, actor=actor)


def remove_card(card: PaymentMethod) -> None:
    """The patient removed the card (what the portal's "remove card" records)."""
    card.removed_at = datetime.now(UTC)
    card.is_default = False
    card.save()


@pytest.fixture
def subscribe(gateways, system):
    """subscribe(plan=…, patient=…, gateway=…) -> an ACTIVE subscription, first payment made."""

    def start(*, plan=None, patient=None, gateway="stripe", token=None) -> Subscription:
        payments.set_active_gateway(gateway=gateway, actor=system, reason="test setup")
        patient = patient or PatientFactory()
        card = save_card(patient, gateway=gateway, token=token)
        return start_subscription(
            patient=patient, plan=plan or make_plan(), payment_method=card, actor=system
        )

    return start
