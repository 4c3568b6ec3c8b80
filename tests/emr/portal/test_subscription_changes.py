"""A patient cancels, pauses, resumes or schedules the cancellation of their subscription after
reading what will and will not happen; the lifecycle policy staff use decides; what they read
is recorded with its SHA-256, when, and from which address and browser."""

import hashlib

import pytest

from emr.portal.models import ConsequencesAcknowledgement, SubscriptionChange
from emr.portal.subscription_changes import consequences
from subscriptions.lifecycle import RECOVERY_BALANCE_EXPLANATION
from subscriptions.states import SubscriptionStatus
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 (iPhone) portal-test", "REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture
def member(subscribe_patient, portal_client):
    """A signed-in patient with an ACTIVE monthly subscription (nothing financed)."""
    patient = PatientFactory()
    subscription = subscribe_patient(patient, name="Monthly care")
    return portal_client(patient), subscription


@pytest.fixture
def financed(subscribe_patient, portal_client):
    """A signed-in patient whose subscription still has two financed payments to make."""
    patient = PatientFactory()
    subscription = subscribe_patient(patient, name="Weight care course", financed_cycles=3)
    return portal_client(patient), subscription


def _shown(page: str) -> str:
    return page.split('name="shown" value="')[1].split('"')[0]


def _confirm(client, url, *, shown=None, understood=True):
    page = client.get(url).content.decode()
    data = {"shown": shown or _shown(page)}
    if understood:
        data["understood"] = "on"
    return client.post(url, data, **BROWSER)


def test_the_page_says_what_cancelling_will_and_will_not_do(member):
    client, subscription = member
    page = client.get(f"/patient/subscriptions/{subscription}/cancel/").content.decode()
    assert "Cancel your Monthly care subscription now" in page
    assert "Future billing stops" in page
    assert "Cancelling stops future billing. It does not refund your last charge" in page
    assert "does not stop a shipment already on its way" in page
    assert "cannot be restarted" in page


def test_a_patient_cancels_after_reading_and_what_they_read_is_recorded(member):
    client, subscription = member
    url = f"/patient/subscriptions/{subscription}/cancel/"

    response = _confirm(client, url)

    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELLED
    assert subscription.cancelled_at is not None
    record = ConsequencesAcknowledgement.objects.get()
    assert record.subscription == subscription and record.change == "cancel"
    assert record.shown_sha256 == hashlib.sha256(record.shown_text.encode()).hexdigest()
    assert "It does not refund your last charge" in record.shown_text
    assert (record.ip_address, record.user_agent) == ("203.0.113.9", BROWSER["HTTP_USER_AGENT"])
    assert record.confirmed_at is not None
    stamp = subscription.history.latest("history_id")
    assert stamp.history_door == "portal" and stamp.history_actor.startswith("patient:")
    assert stamp.history_change_reason == "Cancelled by the patient in the portal"
    page = client.get(response["Location"]).content.decode()
    assert "Your subscription is cancelled" in page and "Cancelled" in page


def test_nothing_changes_until_the_patient_ticks_that_they_read_it(member):
    client, subscription = member
    response = _confirm(client, f"/patient/subscriptions/{subscription}/cancel/", understood=False)
    assert response.status_code == 200
    assert "Tick the box to confirm" in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert not ConsequencesAcknowledgement.objects.exists()


def test_a_text_that_no_longer_matches_is_shown_again_before_anything_changes(member):
    client, subscription = member
    response = _confirm(client, f"/patient/subscriptions/{subscription}/cancel/", shown="0" * 64)
    assert response.status_code == 409
    assert "changed since you opened this page" in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert not ConsequencesAcknowledgement.objects.exists()


def test_pause_then_resume(member):
    client, subscription = member
    page = client.get(f"/patient/subscriptions/{subscription}/").content.decode()
    assert 'data-change="pause"' in page and 'data-change="cancel"' in page

    assert _confirm(client, f"/patient/subscriptions/{subscription}/pause/").status_code == 302
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.PAUSED
    assert (
        'data-change="resume"'
        in client.get(f"/patient/subscriptions/{subscription}/").content.decode()
    )

    assert _confirm(client, f"/patient/subscriptions/{subscription}/resume/").status_code == 302
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert list(
        ConsequencesAcknowledgement.objects.order_by("id").values_list("change", flat=True)
    ) == [
        "pause",
        "resume",
    ]


def test_with_a_financed_balance_the_patient_is_offered_the_scheduled_cancellation(financed):
    client, subscription = financed
    page = client.get(f"/patient/subscriptions/{subscription}/").content.decode()
    assert RECOVERY_BALANCE_EXPLANATION in page
    assert "2 payments of $99.00 remain" in page
    assert 'data-change="schedule-cancellation"' in page
    assert 'data-change="cancel"' not in page and 'data-change="pause"' not in page
    assert "Escalate" not in page  # the staff half of the sentence is not for the patient

    url = f"/patient/subscriptions/{subscription}/schedule-cancellation/"
    consequences = client.get(url).content.decode()
    assert "Your remaining 2 payments of $99.00 ($198.00 in all) are still charged" in consequences
    assert "does not cancel the subscription today" in consequences
    assert _confirm(client, url).status_code == 302

    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.has_scheduled_cancellation
    assert subscription.cancellation_scheduled_by.startswith("patient:")
    assert ConsequencesAcknowledgement.objects.get().change == "schedule-cancellation"
    page = client.get(f"/patient/subscriptions/{subscription}/").content.decode()
    assert 'data-change="withdraw-cancellation"' in page


def test_the_policy_refuses_an_early_cancellation_even_when_posted_directly(financed):
    client, subscription = financed
    url = f"/patient/subscriptions/{subscription}/cancel/"
    page = client.get(url).content.decode()
    assert "This change is not available" in page

    response = client.post(url, {"shown": _shown_for_cancel(subscription), "understood": "on"})

    assert response.status_code == 409
    assert "remaining financed balance" in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert not ConsequencesAcknowledgement.objects.exists()


def _shown_for_cancel(subscription) -> str:
    # The page offers no form to cancel, so the fingerprint comes from the text itself.
    return consequences(subscription, SubscriptionChange.CANCEL).sha256


def test_a_scheduled_cancellation_can_be_withdrawn(financed):
    client, subscription = financed
    _confirm(client, f"/patient/subscriptions/{subscription}/schedule-cancellation/")
    assert (
        _confirm(
            client, f"/patient/subscriptions/{subscription}/withdraw-cancellation/"
        ).status_code
        == 302
    )
    subscription.refresh_from_db()
    assert not subscription.has_scheduled_cancellation


def test_a_subscription_paused_for_payment_resumes_by_paying(recovery_for, portal_client):
    patient = PatientFactory()
    subscription = recovery_for(patient)
    page = portal_client(patient).get(f"/patient/subscriptions/{subscription}/").content.decode()
    assert "paused because a payment did not go through" in page
    assert 'data-change="resume"' not in page
    assert "Pay invoice" in page


def test_an_unknown_change_answers_404(member):
    client, subscription = member
    assert client.get(f"/patient/subscriptions/{subscription}/reactivate/").status_code == 404


def test_billing_admins_read_what_the_patient_was_shown(member, billing_admin, admin_client_for):
    client, subscription = member
    _confirm(client, f"/patient/subscriptions/{subscription}/pause/")
    record = ConsequencesAcknowledgement.objects.get()
    staff = admin_client_for(billing_admin)

    url = f"/admin/portal/consequencesacknowledgement/{record.pk}"
    page = staff.get(f"{url}/change/")

    assert page.status_code == 200
    assert record.shown_sha256 in page.content.decode()
    assert "Pausing does not refund any past charge." in page.content.decode()
    assert staff.post(f"{url}/delete/").status_code == 403
