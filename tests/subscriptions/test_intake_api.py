"""Intake review (the guide, "Intake Rejection Cancellation"): rejecting cancels what is linked;
"needs correction" changes nothing financial."""

import pytest
from rest_framework.test import APIClient

from billing.models import Payment
from billing.states import InvoiceStatus, PaymentKind
from emr.intake import reject_intake, send_back_for_correction
from emr.kernel.errors import InvalidInput, StateConflict
from emr.models import IntakeResponse, IntakeStatus
from emr.support.models import Escalation
from emr.support.states import EscalationRoute
from emr.workflows.models import WorkflowEvent
from orders.models import Order
from orders.services import change_status
from orders.states import OrderStatus
from subscriptions.models import Subscription
from subscriptions.states import CancellationCause, SubscriptionStatus
from tests.subscriptions.conftest import make_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewed(subscribe):
    """A financed subscription (a balance remains) whose first order's intake was submitted,
    plus another, still unanswered form on that order."""
    subscription = subscribe(plan=make_plan(financed_cycles=3))
    order = subscription.orders.get()
    patient = subscription.patient
    submitted = IntakeResponse.objects.create(
        patient=patient, order=order, questionnaire="GLP-1 intake", status=IntakeStatus.SUBMITTED
    )
    unanswered = IntakeResponse.objects.create(
        patient=patient, order=order, questionnaire="Follow-up"
    )
    return subscription, submitted, unanswered


@pytest.fixture
def medical(medical_ops):
    from emr.kernel.actors import Actor, Door

    return Actor.staff(medical_ops, door=Door.ADMIN)


def test_rejecting_an_intake_rejects_the_order_and_cancels_the_subscription(
    clock, reviewed, medical
):
    subscription, intake, unanswered = reviewed

    reject_intake(intake=intake, actor=medical, note="Contraindicated: history of pancreatitis")

    intake.refresh_from_db()
    assert intake.status == IntakeStatus.REJECTED
    assert intake.review_note == "Contraindicated: history of pancreatitis"
    order = Order.objects.get(pk=intake.order_id)
    assert order.status == OrderStatus.REJECTED
    subscription.refresh_from_db()
    # A medical decision: the recovery balance does not hold it back.
    assert subscription.status == SubscriptionStatus.CANCELLED
    assert subscription.cancellation_cause == CancellationCause.INTAKE_REJECTED
    assert subscription.next_billing_at is None
    events = set(WorkflowEvent.objects.values_list("event_type", "subject_key"))
    assert ("intake.rejected", f"intake:{intake.pk}") in events
    assert ("subscription.cancelled", f"subscription:{subscription.pk}") in events
    # Pending intake cleanup, and money already paid is not refunded automatically.
    assert not IntakeResponse.objects.filter(pk=unanswered.pk).exists()
    assert order.invoice.status == InvoiceStatus.PAID
    assert not Payment.objects.filter(kind=PaymentKind.REFUND).exists()


def test_needs_correction_changes_nothing_financial(clock, reviewed, medical):
    subscription, intake, unanswered = reviewed
    order = Order.objects.get(pk=intake.order_id)
    money_before = (order.invoice.status, order.total_cents, Payment.objects.count())

    send_back_for_correction(intake=intake, actor=medical, note="Please add your current dose")

    intake.refresh_from_db()
    assert intake.status == IntakeStatus.NEEDS_CORRECTION
    order.refresh_from_db()
    assert (order.invoice.status, order.total_cents, Payment.objects.count()) == money_before
    assert order.status not in {OrderStatus.REJECTED, OrderStatus.CANCELLED}
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.ACTIVE
    assert IntakeResponse.objects.filter(pk=unanswered.pk).exists()
    assert not WorkflowEvent.objects.filter(
        event_type__in=["intake.rejected", "subscription.cancelled"]
    ).exists()
    assert WorkflowEvent.objects.filter(event_type="intake.pending").count() == 1

    # The corrected answers can still be rejected later.
    reject_intake(intake=intake, actor=medical, note="Still contraindicated")
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.CANCELLED


def test_rejecting_twice_or_without_a_note_is_refused(clock, reviewed, medical):
    _, intake, _ = reviewed
    with pytest.raises(InvalidInput):
        reject_intake(intake=intake, actor=medical, note=" ")
    reject_intake(intake=intake, actor=medical, note="No")
    with pytest.raises(StateConflict) as refused:
        reject_intake(intake=intake, actor=medical, note="No again")
    assert refused.value.code == "intake.already_rejected"


def test_an_unanswered_intake_cannot_be_reviewed(clock, subscribe, medical):
    subscription = subscribe()
    intake = IntakeResponse.objects.create(
        patient=subscription.patient, order=subscription.orders.get(), questionnaire="Intake"
    )
    with pytest.raises(StateConflict) as refused:
        reject_intake(intake=intake, actor=medical, note="No answers")
    assert refused.value.code == "intake.not_reviewable"


def test_the_reject_endpoint_is_for_medical_ops(clock, reviewed, medical_ops, cs_user):
    subscription, intake, _ = reviewed
    url = f"/api/v1/intakes/{intake.pk}/reject/"
    cs = APIClient()
    cs.force_authenticate(cs_user)
    assert cs.post(url, {"note": "No"}, format="json").status_code == 403

    medical = APIClient()
    medical.force_authenticate(medical_ops)
    response = medical.post(url, {"note": "Contraindicated"}, format="json")

    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["status"] == "REJECTED"
    assert data["order_status"] == "REJECTED"
    assert data["subscription"] == {"id": subscription.pk, "status": "CANCELLED"}
    correction = medical.post(
        f"/api/v1/intakes/{intake.pk}/needs-correction/", {"note": "x"}, format="json"
    )
    assert correction.status_code == 409
    assert correction.json()["code"] == "intake.already_rejected"


def test_rejecting_the_intake_of_a_shipped_order_keeps_the_order_and_escalates(
    clock, reviewed, medical_ops, system
):
    subscription, intake, _ = reviewed
    order = change_status(
        order=Order.objects.get(pk=intake.order_id),
        target=OrderStatus.SHIPPED,
        actor=system,
        reason="Shipped by the pharmacy",
    )
    medical = APIClient()
    medical.force_authenticate(medical_ops)

    response = medical.post(
        f"/api/v1/intakes/{intake.pk}/reject/", {"note": "Contraindicated"}, format="json"
    )

    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["status"] == "REJECTED"
    assert data["order_status"] == "SHIPPED"
    assert data["order_kept_status"] == (
        f"{order.number} is shipped and can no longer be rejected, so it keeps its status. "
        "Nothing was refunded or returned: medical operations decide what follows."
    )
    assert data["subscription"] == {"id": subscription.pk, "status": "CANCELLED"}
    escalation = Escalation.objects.get(order=order)
    assert escalation.route == EscalationRoute.MEDICAL
    assert escalation.patient_reason == (
        f"Intake rejected by {medical_ops.username}: Contraindicated"
    )
    assert escalation.message == data["order_kept_status"]
    assert ("intake.rejected", f"intake:{intake.pk}") in set(
        WorkflowEvent.objects.values_list("event_type", "subject_key")
    )


def test_the_browsable_api_offers_the_note_field_on_the_review_actions(reviewed, medical_ops):
    _, intake, _ = reviewed
    browser = APIClient()
    browser.force_login(medical_ops)

    for action in ["reject", "needs-correction"]:
        page = browser.get(f"/api/v1/intakes/{intake.pk}/{action}/", HTTP_ACCEPT="text/html")

        html = page.content.decode()
        assert 'name="note"' in html, action
        assert 'name="questionnaire"' not in html  # the intake's own fields are not the input
