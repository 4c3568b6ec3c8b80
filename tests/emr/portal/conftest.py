"""Patients with a portal login, and signing them in as a browser would (the real form)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from billing import payments
from subscriptions.billing_cycle import run_billing_cycle, start_subscription
from tests.factories import PatientFactory
from tests.subscriptions.conftest import DECLINING_STRIPE_CARD, make_plan, remove_card, save_card

PASSWORD = "a long portal passphrase"


def give_login(patient, password: str = PASSWORD):
    """The login an accepted invitation leaves behind: `patient-<id>`, no staff flag."""
    patient.user = User.objects.create_user(
        username=f"patient-{patient.pk}", email=patient.email, password=password
    )
    patient.save()
    return patient


@pytest.fixture
def patient_with_login(db):
    def make(patient=None, **fields):
        return give_login(patient or PatientFactory(**fields))

    return make


def sign_in(client: Client, email: str, password: str = PASSWORD):
    return client.post("/patient/login/", {"email": email, "password": password})


@pytest.fixture
def portal_client(patient_with_login):
    """portal_client(patient=None) -> a Client signed in through the portal's form."""

    def make(patient=None) -> Client:
        if patient is None or patient.user_id is None:
            patient = patient_with_login(patient)
        client = Client()
        response = sign_in(client, patient.email)
        assert response.status_code == 302, response.content.decode()[:500]
        client.patient = patient
        return client

    return make


# --- Subscriptions and payment recovery, through the real billing cycle ---------------------

RENEWAL_DAYS = 31


@pytest.fixture
def clock(time_machine):
    """The clock, stopped now; `clock.shift(...)` moves it (the billing cycle reads it)."""
    time_machine.move_to(timezone.now(), tick=False)
    return time_machine


@pytest.fixture
def subscribe(gateways, system):
    """subscribe(patient, plan=None) -> an ACTIVE subscription whose first payment was made
    with a saved Stripe card."""

    def start(patient, *, plan=None, **plan_fields):
        payments.set_active_gateway(gateway="stripe", actor=system, reason="test setup")
        card = save_card(patient)
        return start_subscription(
            patient=patient,
            plan=plan or make_plan(**plan_fields),
            payment_method=card,
            actor=system,
        )

    return start


@pytest.fixture
def in_recovery(subscribe, clock):
    """in_recovery(patient, **plan) -> a subscription whose renewal was declined: PAUSED,
    its renewal invoice open; the patient's only card now declines every charge."""

    def fail(patient, **plan_fields):
        subscription = subscribe(patient, **plan_fields)
        subscription.refresh_from_db()
        remove_card(subscription.payment_method)
        save_card(patient, token=DECLINING_STRIPE_CARD)
        clock.shift(timedelta(days=RENEWAL_DAYS))
        run_billing_cycle()
        subscription.refresh_from_db()
        return subscription

    return fail
