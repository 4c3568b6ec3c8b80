"""Staff sign-in (issue 12, item 2): lockout after repeated failures, automatic logoff when
idle and after an absolute lifetime, API throttling per token, strong passwords."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from emr.kernel.api import AddressRateThrottle, TokenRateThrottle
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def _sign_in(client: Client, username: str, password: str):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


@pytest.fixture
def staff(cs_user):
    cs_user.set_password(PASSWORD)
    cs_user.save()
    return cs_user


def test_repeated_failures_pause_sign_in_even_with_the_right_password(staff, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _sign_in(client, staff.username, "wrong").status_code == 200  # the form again
    assert _sign_in(client, staff.username, "wrong").status_code == 429

    refused = _sign_in(client, staff.username, PASSWORD)

    assert refused.status_code == 429
    assert "Sign-in paused" in refused.content.decode()
    assert "15 minutes" in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_sign_in_works_again_after_the_pause(staff, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, staff.username, "wrong")
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert _sign_in(client, staff.username, PASSWORD).status_code == 302


def test_a_few_mistakes_then_the_right_password_signs_in(staff, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, staff.username, "wrong")
    assert _sign_in(client, staff.username, PASSWORD).status_code == 302


def test_an_idle_session_is_signed_out(staff):
    client = Client()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.force_login(staff)
        assert client.get("/admin/").status_code == 200
    with time_machine.travel(start + timedelta(minutes=10), tick=False):
        assert client.get("/admin/").status_code == 200  # active: still signed in
    with time_machine.travel(start + timedelta(minutes=26), tick=False):
        response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/admin/login/")
    assert "without activity" in response.content.decode()


def test_an_active_session_still_ends_after_its_lifetime(staff, settings):
    settings.SESSION_MAX_HOURS = 1
    client = Client()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.force_login(staff)
        client.get("/admin/")
    for minutes in range(10, 61, 10):
        with time_machine.travel(start + timedelta(minutes=minutes), tick=False):
            assert client.get("/admin/").status_code == 200
    with time_machine.travel(start + timedelta(minutes=65), tick=False):
        response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_the_api_throttles_a_token_that_calls_too_often(cs_user, settings):
    settings.API_THROTTLE_PER_TOKEN = "3/minute"
    # Ids repeat across test databases while the cache outlives them: start this budget empty.
    TokenRateThrottle.cache.delete(f"throttle_user_{cs_user.pk}")
    client = APIClient()
    client.force_authenticate(cs_user)
    answers = [client.get("/api/v1/orders/").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    refused = client.get("/api/v1/orders/")
    assert refused.json()["code"] == "throttled"


def test_the_api_throttles_one_address_across_tokens(cs_user, billing_admin, settings):
    settings.API_THROTTLE_PER_ADDRESS = "2/minute"
    AddressRateThrottle.cache.delete("throttle_address_10.9.8.7")
    answers = []
    for user in (cs_user, billing_admin, cs_user):
        client = APIClient(REMOTE_ADDR="10.9.8.7")
        client.force_authenticate(user)
        answers.append(client.get("/api/v1/orders/").status_code)
    assert answers == [200, 200, 429]


@pytest.mark.parametrize("weak", ["short1!", "12345678901234", "password1234"])
def test_weak_staff_passwords_are_refused(weak):
    with pytest.raises(ValidationError):
        validate_password(weak, user=UserFactory.build(username="cs-agent"))


def test_wrong_api_tokens_are_throttled_per_address(cs_user, settings):
    # Throttles run after authentication, which refuses a wrong token first: without this
    # budget guessing tokens would never be slowed down.
    settings.API_TOKEN_FAILURES_PER_ADDRESS = "3/hour"
    cache.delete("api_token_failures_10.6.6.6")
    cache.delete("api_token_failures_10.1.2.3")
    right = Token.objects.create(user=cs_user).key
    guesser = APIClient(REMOTE_ADDR="10.6.6.6")

    answers = [
        guesser.get("/api/v1/orders/", HTTP_AUTHORIZATION=f"Token wrong{n}").status_code
        for n in range(4)
    ]
    lucky = guesser.get("/api/v1/orders/", HTTP_AUTHORIZATION=f"Token {right}")

    assert answers == [401, 401, 401, 429]
    # Over the budget even the right token waits: a right guess looks like a wrong one.
    assert lucky.status_code == 429
    assert lucky.json()["code"] == "throttled"
    assert "Too many wrong API tokens" in lucky.json()["detail"]
    clinic = APIClient(REMOTE_ADDR="10.1.2.3")
    assert clinic.get("/api/v1/orders/", HTTP_AUTHORIZATION=f"Token {right}").status_code == 200
