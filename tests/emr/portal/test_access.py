"""Access to the portal: a staff invitation by email with a single-use, expiring link; sign-in
by email with lockout; idle logoff; password reset; CSRF; staff and patients kept to their
own doors."""

import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from emr.models import Patient
from tests.factories import PatientFactory
from tests.fixtures.portal import PASSWORD, sign_in

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://\S+/patient/(?:welcome|reset)/\S+/")
NEW_PASSWORD = "river stones and kites"


def _invite(api, patient, capture):
    with capture(execute=True):
        return api.post(f"/api/v1/patients/{patient.pk}/portal-invite/")


def _link_in(message) -> str:
    return LINK.search(message.body)[0].replace("http://localhost:8000", "")


def _choose_password(client: Client, link: str, password: str = NEW_PASSWORD):
    landing = client.get(link)
    if landing.status_code != 302:
        return landing
    return client.post(
        landing["Location"], {"new_password1": password, "new_password2": password}, follow=True
    )


@pytest.fixture
def invited(api, django_capture_on_commit_callbacks):
    patient = PatientFactory(first_name="Ada", email="ada@example.test")
    response = _invite(api, patient, django_capture_on_commit_callbacks)
    assert response.status_code == 201, response.json()
    return patient


# --- The invitation --------------------------------------------------------------------------


def test_staff_invite_emails_a_link_and_creates_a_login_without_password(invited, settings):
    patient = Patient.objects.select_related("user").get(pk=invited.pk)
    assert patient.user.username == f"patient-{patient.pk}"
    assert not patient.user.is_staff and not patient.user.has_usable_password()
    [message] = mail.outbox
    assert message.to == ["ada@example.test"]
    assert settings.CLINIC_NAME in message.subject
    assert "works once and expires" in message.body
    assert "/patient/welcome/" in message.body


def test_the_invite_answers_with_the_address_and_expiry(api, django_capture_on_commit_callbacks):
    patient = PatientFactory(email="bo@example.test")
    body = _invite(api, patient, django_capture_on_commit_callbacks).json()
    assert body["patient"] == patient.pk and body["email"] == "bo@example.test"
    assert body["expires_at"]


def test_the_invited_patient_sets_a_password_then_signs_in(invited, settings):
    client = Client()
    done = _choose_password(client, _link_in(mail.outbox[0]))
    assert done.redirect_chain[-1][0] == "/patient/login/"
    assert "Your password is set" in done.content.decode()
    assert f"mailto:{settings.CLINIC_EMAIL}" in done.content.decode()  # how to reach the clinic

    signed_in = sign_in(client, "ADA@example.test ", NEW_PASSWORD)  # typed loosely
    assert signed_in.status_code == 302 and signed_in["Location"] == "/patient/"
    assert "Hello, Ada" in client.get("/patient/").content.decode()


def test_the_invitation_link_works_once(invited):
    link = _link_in(mail.outbox[0])
    _choose_password(Client(), link)
    again = Client().get(link)
    assert again.status_code == 200
    assert "This link no longer works" in again.content.decode()


def test_the_invitation_link_expires(invited, settings):
    link = _link_in(mail.outbox[0])
    later = timezone.now() + timedelta(hours=settings.PORTAL_INVITE_HOURS, minutes=1)
    with time_machine.travel(later):
        response = Client().get(link)
    assert "This link no longer works" in response.content.decode()
    assert not User.objects.get(patient=invited).has_usable_password()


def test_a_new_invitation_replaces_the_earlier_link(
    invited, api, django_capture_on_commit_callbacks
):
    first = _link_in(mail.outbox[0])
    _invite(api, invited, django_capture_on_commit_callbacks)
    assert "This link no longer works" in Client().get(first).content.decode()
    assert _choose_password(Client(), _link_in(mail.outbox[1])).status_code == 200


def test_no_invitation_once_the_patient_has_a_password(
    invited, api, django_capture_on_commit_callbacks
):
    _choose_password(Client(), _link_in(mail.outbox[0]))
    response = _invite(api, invited, django_capture_on_commit_callbacks)
    assert response.status_code == 409
    assert response.json()["code"] == "portal.already_active"
    assert len(mail.outbox) == 1


def test_the_password_rules_apply(invited):
    response = _choose_password(Client(), _link_in(mail.outbox[0]), password="12345678")
    assert response.status_code == 200
    assert not User.objects.get(patient=invited).has_usable_password()
    assert "too short" in response.content.decode()


def test_inviting_needs_a_role_that_may_change_patients(medical_ops):
    api = APIClient()
    api.force_authenticate(medical_ops)
    response = api.post(f"/api/v1/patients/{PatientFactory().pk}/portal-invite/")
    assert response.status_code == 403
    assert mail.outbox == []


# --- Signing in ------------------------------------------------------------------------------


def test_a_wrong_password_is_refused_with_a_sentence(patient_with_login):
    patient = patient_with_login()
    client = Client()
    response = sign_in(client, patient.email, "not the password")
    assert response.status_code == 200
    assert "do not match a portal account" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_repeated_failures_pause_sign_in_and_say_when_to_try_again(patient_with_login, settings):
    patient = patient_with_login()
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, patient.email, "wrong")

    before = timezone.now() + timedelta(minutes=15)
    refused = sign_in(client, patient.email, PASSWORD)  # even the right password
    after = timezone.now() + timedelta(minutes=15)

    assert refused.status_code == 429
    page = refused.content.decode()
    assert "Sign-in is paused for 15 minutes" in page
    assert any(f"Try again after {at:%-I:%M %p} (UTC)" in page for at in (before, after))
    assert "_auth_user_id" not in client.session
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert sign_in(client, patient.email, PASSWORD).status_code == 302


def test_failures_are_counted_per_account_across_addresses(patient_with_login, settings):
    patient = patient_with_login()
    for number in range(settings.AXES_FAILURE_LIMIT):
        sign_in(Client(REMOTE_ADDR=f"10.0.0.{number + 1}"), patient.email, "wrong")
    refused = sign_in(Client(REMOTE_ADDR="10.0.1.1"), patient.email.upper(), PASSWORD)
    assert refused.status_code == 429


def test_failures_are_counted_per_address_across_accounts(patient_with_login, settings):
    patient = patient_with_login()
    for number in range(settings.AXES_FAILURE_LIMIT):
        sign_in(Client(REMOTE_ADDR="10.9.9.9"), f"guess{number}@example.test", "wrong")
    assert sign_in(Client(REMOTE_ADDR="10.9.9.9"), patient.email).status_code == 429
    assert sign_in(Client(REMOTE_ADDR="10.9.9.10"), patient.email).status_code == 302


def test_signing_in_clears_the_accounts_earlier_failures(patient_with_login, settings):
    patient = patient_with_login()
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, patient.email, "wrong")
    assert sign_in(client, patient.email).status_code == 302
    assert not AccessAttempt.objects.filter(username=patient.email).exists()


def test_a_signed_in_patient_is_signed_out_when_idle(portal_client, settings):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client = portal_client()
    with time_machine.travel(start + timedelta(minutes=10), tick=False):
        assert client.get("/patient/").status_code == 200
    idle = timedelta(minutes=10 + settings.IDLE_LOGOFF_MINUTES + 1)
    with time_machine.travel(start + idle, tick=False):
        response = client.get("/patient/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/patient/login/")
    assert "without activity" in response.content.decode()


def test_signing_out_ends_the_session(portal_client):
    client = portal_client()
    response = client.post("/patient/logout/", follow=True)
    assert "You are signed out" in response.content.decode()
    assert client.get("/patient/")["Location"].startswith("/patient/login/")


def test_every_form_needs_its_csrf_token(patient_with_login):
    patient = patient_with_login()
    client = Client(enforce_csrf_checks=True)
    response = client.post("/patient/login/", {"email": patient.email, "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


# --- Doors: a patient login opens only the portal; staff have no patient session ------------


def test_a_patient_login_does_not_open_the_admin(portal_client):
    client = portal_client()
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    patient = client.patient
    refused = Client().post(
        "/admin/login/?next=/admin/", {"username": patient.user.username, "password": PASSWORD}
    )
    assert refused.status_code == 200  # the form again: not a staff account
    assert "_auth_user_id" not in refused.wsgi_request.session


@pytest.mark.parametrize("path", ["/api/v1/orders/", "/api/v1/patients/"])
def test_a_patient_login_has_no_api_access(portal_client, path):
    response = portal_client().get(path)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_staff_signed_in_to_the_admin_have_no_patient_session(cs_user, admin_client_for):
    response = admin_client_for(cs_user).get("/patient/")
    assert response.status_code == 403
    assert "staff have no patient portal session" in response.content.decode()


def test_the_portal_sign_in_refuses_a_staff_account_with_a_sentence(cs_user):
    cs_user.set_password(PASSWORD)
    cs_user.save()
    client = Client()
    response = sign_in(client, cs_user.email)
    assert response.status_code == 200
    assert "This is a clinic staff account" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_login_that_is_not_a_patient_is_refused(db):
    User.objects.create_user(username="someone", email="someone@example.test", password=PASSWORD)
    client = Client()
    client.force_login(User.objects.get(username="someone"))
    response = client.get("/patient/")
    assert response.status_code == 403
    assert "not linked to a patient record" in response.content.decode()


# --- Password reset --------------------------------------------------------------------------


def test_a_patient_resets_a_forgotten_password_once(patient_with_login):
    patient = patient_with_login()
    response = Client().post("/patient/password-reset/", {"email": patient.email}, follow=True)
    assert "Check your email" in response.content.decode()
    link = _link_in(mail.outbox[0])
    _choose_password(Client(), link, password=NEW_PASSWORD)
    assert sign_in(Client(), patient.email, NEW_PASSWORD).status_code == 302
    assert "This link no longer works" in Client().get(link).content.decode()


def test_a_reset_link_expires(patient_with_login, settings):
    patient = patient_with_login()
    Client().post("/patient/password-reset/", {"email": patient.email})
    link = _link_in(mail.outbox[0])
    later = timezone.now() + timedelta(minutes=settings.PORTAL_PASSWORD_RESET_MINUTES + 1)
    with time_machine.travel(later):
        assert "This link no longer works" in Client().get(link).content.decode()


def test_a_reset_tells_no_one_which_addresses_have_an_account(cs_user):
    for email in ["nobody@example.test", cs_user.email]:
        response = Client().post("/patient/password-reset/", {"email": email}, follow=True)
        assert "If that address belongs to a patient portal account" in response.content.decode()
    assert mail.outbox == []  # no patient: no email, and never a reset link for staff


def _fresh_address() -> str:
    # An address of this test's own (IPv6 documentation range): counters outlive a run.
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def _ask_for_reset(email: str, address: str):
    response = Client(REMOTE_ADDR=address).post(
        "/patient/password-reset/", {"email": email}, follow=True
    )
    assert response.status_code == 200
    return response.content.decode()


def test_resets_for_one_email_stop_at_its_limit_with_the_same_answer(patient_with_login, settings):
    settings.PORTAL_PASSWORD_RESET_PER_EMAIL = 2
    patient = patient_with_login(email=f"reset-{uuid.uuid4().hex[:8]}@example.test")

    answers = {_ask_for_reset(patient.email.upper(), _fresh_address()) for _ in range(4)}

    assert len(answers) == 1  # the same page, sent or not
    assert len(mail.outbox) == 2  # from four addresses, the mailbox got two emails


def test_resets_from_one_address_stop_at_its_limit_whether_or_not_an_account_exists(
    patient_with_login, settings
):
    settings.PORTAL_PASSWORD_RESET_PER_ADDRESS = 3
    address = _fresh_address()
    unknown = [f"nobody-{uuid.uuid4().hex[:8]}@example.test" for _ in range(3)]
    patient = patient_with_login(email=f"reset-{uuid.uuid4().hex[:8]}@example.test")

    answers = {_ask_for_reset(email, address) for email in [*unknown, patient.email]}

    assert len(answers) == 1
    assert mail.outbox == []  # unknown emails used the address's budget: no probing past it
    _ask_for_reset(patient.email, _fresh_address())
    assert len(mail.outbox) == 1  # from another address the patient still gets the link


def test_the_reset_limits_are_read_when_asked(patient_with_login, settings):
    patient = patient_with_login(email=f"reset-{uuid.uuid4().hex[:8]}@example.test")
    settings.PORTAL_PASSWORD_RESET_PER_EMAIL = 1
    _ask_for_reset(patient.email, _fresh_address())
    _ask_for_reset(patient.email, _fresh_address())
    settings.PORTAL_PASSWORD_RESET_PER_EMAIL = 5

    _ask_for_reset(patient.email, _fresh_address())

    assert len(mail.outbox) == 2
