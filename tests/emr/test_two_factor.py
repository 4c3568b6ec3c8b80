"""Two-factor sign-in for staff (issue 12, item 2): billing admins and superusers set up an
authenticator app before anything else, then sign in with password and code; CS signs in with
a password unless the clinic adds CS to the groups."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def two_factor_on(settings):
    settings.STAFF_TWO_FACTOR_REQUIRED = True


def _with_password(user):
    user.set_password(PASSWORD)
    user.save()
    return user


def _code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    totp.time = timezone.now().timestamp()
    return f"{totp.token():0{device.digits}d}"


def _sign_in(client, user, code=""):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": user.username, "password": PASSWORD, "otp_token": code},
    )


def test_a_billing_admin_sets_up_an_app_before_anything_else(billing_admin):
    user, client = _with_password(billing_admin), Client()
    assert _sign_in(client, user).status_code == 302

    first_page = client.get("/admin/orders/order/")
    assert first_page.status_code == 302 and first_page["Location"] == "/admin/two-factor/"
    api = client.get("/api/v1/orders/")
    assert api.status_code == 403 and api.json()["code"] == "auth.two_factor_required"

    setup = client.get("/admin/two-factor/")
    assert "Set up two-factor sign-in" in setup.content.decode()
    assert 'id="two-factor-qr"' in setup.content.decode()
    device = TOTPDevice.objects.get(user=user, confirmed=False)

    wrong = client.post("/admin/two-factor/", {"code": "000000"})
    assert "not right" in wrong.content.decode()
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):  # past the wrong-code pause
        done = client.post("/admin/two-factor/", {"code": _code(device)}, follow=True)
    assert done.redirect_chain[-1][0] == "/admin/"
    assert "Two-factor sign-in is on" in done.content.decode()
    assert client.get("/admin/orders/order/").status_code == 200
    device.refresh_from_db()
    assert device.confirmed


def test_with_an_app_set_up_the_password_alone_does_not_sign_in(billing_admin):
    user = _with_password(billing_admin)
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)

    client = Client()
    refused = _sign_in(client, user)
    assert refused.status_code == 200
    assert "Enter the 6-digit code" in refused.content.decode()
    assert "_auth_user_id" not in client.session

    assert "not right" in _sign_in(client, user, "123456").content.decode()

    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        assert _sign_in(client, user, _code(device)).status_code == 302
        assert client.get("/admin/orders/order/").status_code == 200


def test_a_used_code_cannot_be_replayed(billing_admin):
    user = _with_password(billing_admin)
    device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    with time_machine.travel(timezone.now(), tick=False):
        code = _code(device)
        assert _sign_in(Client(), user, code).status_code == 302
        assert _sign_in(Client(), user, code).status_code == 200  # the same code again


def test_cs_signs_in_with_a_password_unless_the_clinic_adds_cs(cs_user, settings):
    user = _with_password(cs_user)
    client = Client()
    _sign_in(client, user)
    assert client.get("/admin/orders/order/").status_code == 200

    settings.STAFF_TWO_FACTOR_GROUPS = ["Billing admin", "CS"]
    assert client.get("/admin/orders/order/")["Location"] == "/admin/two-factor/"


def test_the_sign_in_page_offers_the_code_field():
    page = Client().get("/admin/login/").content.decode()
    assert 'name="otp_token"' in page and "Authentication code" in page
