import pytest
from rest_framework.test import APIClient

from emr.staff_groups import BILLING_ADMIN, CS, MEDICAL_OPS
from tests.factories import UserFactory
from tests.fixtures.nmi import *  # noqa: F403  (the NMI fake server)
from tests.fixtures.stripe import *  # noqa: F403  (localstripe and the Stripe fake)


@pytest.fixture
def cs_user(db):
    return UserFactory(username="cs-agent", groups=[CS])


@pytest.fixture
def billing_admin(db):
    return UserFactory(username="billing-admin", groups=[BILLING_ADMIN])


@pytest.fixture
def medical_ops(db):
    return UserFactory(username="med-ops", groups=[MEDICAL_OPS])


@pytest.fixture
def api(cs_user):
    client = APIClient()
    client.force_authenticate(cs_user)
    return client


@pytest.fixture
def admin_client_for():
    """A logged-in Django test client for a given staff user."""
    from django.test import Client

    def login(user):
        client = Client()
        client.force_login(user)
        return client

    return login
