"""Patients with a portal login, and signing them in as a browser would (the real form)."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.factories import PatientFactory

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
