import pytest
from django.contrib.auth.models import Group, Permission
from rest_framework.test import APIClient

from emr.celery import app as celery_app
from emr.staff_groups import BILLING_ADMIN, CS, MEDICAL_OPS, apply_group_permissions
from tests.factories import UserFactory
from tests.fixtures.beluga import *  # noqa: F403  (the Beluga fake server)
from tests.fixtures.celery_worker import *  # noqa: F403  (a real Celery worker process)
from tests.fixtures.dispensepro import *  # noqa: F403  (the DispensePro fake server)
from tests.fixtures.documents import *  # noqa: F403  (a consent, and an order that needs it)
from tests.fixtures.gateways import *  # noqa: F403  (both gateways configured against them)
from tests.fixtures.nmi import *  # noqa: F403  (the NMI fake server)
from tests.fixtures.orders import *  # noqa: F403  (orders paid through those gateways)
from tests.fixtures.portal import *  # noqa: F403  (patients signed in to the portal)
from tests.fixtures.stripe import *  # noqa: F403  (localstripe and the Stripe fake)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Staff users are created in most tests; the production hasher is slow by design.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def api_budgets_for_one_busy_address(settings):
    # The whole suite calls the API from one address, faster than any clinic's staff; the
    # throttling tests set their own small budgets.
    settings.API_THROTTLE_PER_TOKEN = "1000000/minute"
    settings.API_THROTTLE_PER_ADDRESS = "1000000/minute"
    settings.API_TOKEN_FAILURES_PER_ADDRESS = "1000000/minute"


@pytest.fixture(autouse=True)
def reset_budgets_for_one_busy_address(settings):
    # Likewise the portal's password-reset form, whose counters outlive a run in Redis; the
    # tests of its limits set small ones, for an email and an address of their own.
    settings.PORTAL_PASSWORD_RESET_PER_EMAIL = 1_000_000
    settings.PORTAL_PASSWORD_RESET_PER_ADDRESS = 1_000_000


@pytest.fixture
def roles(db):
    """The staff groups, as the data migration makes them. A transactional test's flush deletes
    migration data, so tests that need the roles re-apply the table (idempotent)."""
    apply_group_permissions(Group, Permission)


@pytest.fixture
def cs_user(roles):
    return UserFactory(username="cs-agent", groups=[CS])


@pytest.fixture
def billing_admin(roles):
    return UserFactory(username="billing-admin", groups=[BILLING_ADMIN])


@pytest.fixture
def medical_ops(roles):
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


@pytest.fixture
def grant():
    """Give a user extra permissions by "app_label.codename"."""

    def give(user, *names):
        for name in names:
            app_label, codename = name.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        return user

    return give


@pytest.fixture
def celery_eager():
    """Tasks run in the calling process (an on-commit enqueue runs the task right away)."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous
