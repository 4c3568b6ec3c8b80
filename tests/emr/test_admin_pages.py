"""The chart's admin pages: medical operations review an intake from its page (reject, needs
correction) and read what followed; a patient's login is never re-pointed by a form."""

from html import unescape

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from emr.models import IntakeResponse, IntakeStatus, Patient
from emr.support.models import Escalation
from orders.services import change_status
from orders.states import OrderStatus
from subscriptions.models import Subscription
from subscriptions.states import CancellationCause, SubscriptionStatus
from tests.admin_tools import confirm_tool
from tests.factories import PatientFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


def tool_url(intake, tool: str) -> str:
    return reverse("admin:emr_intakeresponse_tool", args=[intake.pk, tool])


def page_url(intake) -> str:
    return reverse("admin:emr_intakeresponse_change", args=[intake.pk])


@pytest.fixture
def submitted(paid_order):
    """A submitted intake of a paid order that belongs to an active subscription."""
    order = paid_order("stripe", 9900)
    order.subscription = SubscriptionFactory(patient=order.patient)
    order.save()
    return IntakeResponse.objects.create(
        patient=order.patient,
        order=order,
        questionnaire="GLP-1 intake",
        status=IntakeStatus.SUBMITTED,
    )


def test_medical_ops_reject_an_intake_and_read_what_followed(
    submitted, medical_ops, admin_client_for
):
    client = admin_client_for(medical_ops)
    order = submitted.order
    assert 'data-tool="reject"' in client.get(page_url(submitted)).content.decode()

    confirm = client.get(tool_url(submitted, "reject")).content.decode()
    assert "Before you reject the intake GLP-1 intake: what to check" in confirm
    assert f"{order.number} (Processing) will be REJECTED." in confirm
    assert "rejecting does not refund it" in confirm
    assert f"{order.subscription} (" in confirm and "will be cancelled" in confirm
    html = confirm_tool(
        client,
        tool_url(submitted, "reject"),
        {"reason": "Contraindicated: pancreatitis"},
        follow=True,
    ).content.decode()

    subscription = Subscription.objects.get(pk=order.subscription_id)
    assert (
        "GLP-1 intake: rejected. "
        f"{order.number} rejected; {order.invoice.number} stays "
        f"paid: refund it separately if the patient is owed it. {subscription} cancelled; "
        "future billing stopped."
    ) in html
    submitted.refresh_from_db()
    assert (submitted.status, submitted.review_note) == (
        IntakeStatus.REJECTED,
        "Contraindicated: pancreatitis",
    )
    assert subscription.cancellation_cause == CancellationCause.INTAKE_REJECTED
    assert 'data-tool="' not in html  # nothing more to review


def test_a_review_note_is_required(submitted, medical_ops, admin_client_for):
    response = confirm_tool(
        admin_client_for(medical_ops), tool_url(submitted, "reject"), {"reason": ""}
    )
    assert "This field is required" in response.content.decode()
    assert IntakeResponse.objects.get(pk=submitted.pk).status == IntakeStatus.SUBMITTED


def test_rejecting_a_shipped_order_s_intake_says_it_was_escalated(
    submitted, medical_ops, admin_client_for, system
):
    order = change_status(
        order=submitted.order, target=OrderStatus.SHIPPED, actor=system, reason="Shipped"
    )
    client = admin_client_for(medical_ops)
    assert "too far to be rejected" in client.get(tool_url(submitted, "reject")).content.decode()

    html = confirm_tool(
        client, tool_url(submitted, "reject"), {"reason": "Contraindicated"}, follow=True
    ).content.decode()

    escalation = Escalation.objects.get(order=order)
    assert (
        f"{order.number} is shipped and can no longer be rejected, so it keeps its status. "
        "Nothing was refunded or returned: medical operations decide what follows. Escalated "
        f"to medical operations as {escalation.number}."
    ) in html


def test_needs_correction_says_nothing_financial_changed(submitted, medical_ops, admin_client_for):
    client = admin_client_for(medical_ops)
    html = confirm_tool(
        client,
        tool_url(submitted, "needs_correction"),
        {"reason": "Please add your current medications"},
        follow=True,
    ).content.decode()
    html = unescape(html)  # a name like O'Brien is escaped in the page

    patient = submitted.patient
    assert (
        "GLP-1 intake: sent back "
        f"to {patient.full_name} for correction; they were asked "
        f"to fix their answers. {submitted.order.number} waits for the corrected answers"
    ) in html
    assert "Nothing financial changed." in html
    assert IntakeResponse.objects.get(pk=submitted.pk).status == IntakeStatus.NEEDS_CORRECTION
    assert Subscription.objects.get(patient=patient).status == SubscriptionStatus.ACTIVE
    # Sent back once, the answers wait for the patient: only a rejection is still offered.
    page = client.get(page_url(submitted)).content.decode()
    assert 'data-tool="reject"' in page and 'data-tool="needs_correction"' not in page


@pytest.mark.parametrize("role", ["cs_user", "billing_admin"])
def test_only_medical_ops_review_intakes(request, role, submitted, admin_client_for):
    client = admin_client_for(request.getfixturevalue(role))
    page = client.get(page_url(submitted)).content.decode()
    assert "data-tool=" not in page
    assert "Intake decisions are made by medical operations." in page

    html = confirm_tool(
        client, tool_url(submitted, "reject"), {"reason": "Not for CS"}, follow=True
    ).content.decode()
    assert "Your role does not allow this" in html
    assert IntakeResponse.objects.get(pk=submitted.pk).status == IntakeStatus.SUBMITTED


def test_the_intake_page_has_no_form_fields(submitted, medical_ops, admin_client_for):
    html = admin_client_for(medical_ops).get(page_url(submitted)).content.decode()
    for field in ["patient", "order", "questionnaire", "review_note", "status"]:
        assert f'name="{field}"' not in html


# --- Patients: contact details yes, the login never ------------------------------------------


@pytest.mark.parametrize("role", ["cs_user", "billing_admin", "superuser"])
def test_a_patient_s_login_is_never_re_pointed(request, role, roles, admin_client_for):
    user = (
        UserFactory(username="root", is_superuser=True, is_staff=True)
        if role == "superuser"
        else request.getfixturevalue(role)
    )
    login, other_login = User.objects.create(username="pat-1"), User.objects.create(username="x")
    patient = Patient.objects.create(
        first_name="Ada", last_name="Lovelace", email="ada@example.test", user=login
    )
    url = reverse("admin:emr_patient_change", args=[patient.pk])
    client = admin_client_for(user)

    form = client.get(url).content.decode()
    client.post(
        url,
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.test",
            "phone": "+1 555 0100",
            "user": other_login.pk,
        },
    )

    assert 'name="user"' not in form
    patient.refresh_from_db()
    assert patient.user_id == login.pk
    assert patient.phone == "+1 555 0100"  # contact details stay CS's to keep current
    delete = reverse("admin:emr_patient_delete", args=[patient.pk])
    assert client.get(delete).status_code == 403


def test_cs_invites_a_patient_to_the_portal_from_the_patient_page(
    cs_user, admin_client_for, mailoutbox, django_capture_on_commit_callbacks
):
    patient = PatientFactory()
    client = admin_client_for(cs_user)
    page = client.get(reverse("admin:emr_patient_change", args=[patient.pk])).content.decode()
    assert 'data-tool="portal_invite"' in page

    with django_capture_on_commit_callbacks(execute=True):  # the email leaves after commit
        done = confirm_tool(
            client,
            reverse("admin:emr_patient_tool", args=[patient.pk, "portal_invite"]),
            {"reason": "Patient asked on the phone for portal access"},
            follow=True,
        )
    assert f"Portal invitation sent to {patient.email}" in unescape(done.content.decode())
    [email] = mailoutbox
    assert email.to == [patient.email] and "/patient/" in email.body
    patient.refresh_from_db()
    assert patient.user is not None and not patient.user.has_usable_password()
    assert patient.history.latest().history_change_reason.startswith("Patient asked")


def test_a_patient_who_set_a_password_is_not_offered_an_invitation(cs_user, admin_client_for):
    patient = PatientFactory()
    patient.user = User.objects.create_user(username=f"patient-{patient.pk}", password="x" * 16)
    patient.save()
    page = admin_client_for(cs_user).get(reverse("admin:emr_patient_change", args=[patient.pk]))
    assert 'data-tool="portal_invite"' not in page.content.decode()


def test_the_email_a_patient_signs_in_with_is_not_changed_by_a_form(cs_user, admin_client_for):
    """The portal signs a patient in with this email and sends password resets to it: whoever
    could rewrite it could take over the account, its cards and its records. Before the
    patient set a password, a mistyped address can still be corrected and invited again."""
    invited = PatientFactory(email="al@example.test")
    invited.user = User.objects.create_user(username=f"patient-{invited.pk}")  # no password
    invited.save()
    signed_up = PatientFactory(email="ada@example.test")
    signed_up.user = User.objects.create_user(username=f"patient-{signed_up.pk}", password="x" * 16)
    signed_up.save()
    client = admin_client_for(cs_user)

    for patient in (invited, signed_up):
        client.post(
            reverse("admin:emr_patient_change", args=[patient.pk]),
            {
                "first_name": patient.first_name,
                "last_name": patient.last_name,
                "email": f"new-{patient.email}",
                "phone": "+1 555 0100",
            },
        )

    assert Patient.objects.get(pk=invited.pk).email == "new-al@example.test"
    stored = Patient.objects.get(pk=signed_up.pk)
    assert (stored.email, stored.phone) == ("ada@example.test", "+1 555 0100")
    page = client.get(reverse("admin:emr_patient_change", args=[signed_up.pk])).content.decode()
    assert 'name="email"' not in page
    assert "the patient signs in with the email above" in page
