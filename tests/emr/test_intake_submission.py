"""Sending an intake form and the patient submitting it: the order moves on once the answers
are in (clinic-platform-notes.md, "Intake": submission recalculates the order)."""

import pytest

from emr.intake import send_intake_form, submit_intake
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import InvalidInput, StateConflict
from emr.models import IntakeStatus
from emr.workflows.models import WorkflowEvent
from orders.models import Order, ProductKind
from orders.services import OrderLine, create_order
from orders.states import OrderStatus
from tests.factories import PatientFactory, ProductFactory
from tests.fixtures.beluga import pay

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("intake-tests", door=Door.SHELL)


@pytest.fixture
def paid_prescription_order():
    product = ProductFactory(
        kind=ProductKind.MEDICATION, requires_intake=True, requires_prescription=True
    )
    order = create_order(patient=PatientFactory(), lines=[OrderLine(product, 1)], actor=ACTOR)
    pay(order)
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_REQUIREMENTS
    return order


def test_a_sent_form_waits_for_the_patient_and_the_submitted_answers_move_the_order_on(
    paid_prescription_order,
):
    order = paid_prescription_order

    intake = send_intake_form(order=order, questionnaire="Weight care intake", actor=ACTOR)

    assert intake.status == IntakeStatus.PENDING and intake.submitted_at is None
    assert Order.objects.get(pk=order.pk).status == OrderStatus.AWAITING_REQUIREMENTS
    assert WorkflowEvent.objects.filter(event_type="intake.pending").count() == 1

    submitted = submit_intake(intake=intake, actor=ACTOR)

    assert submitted.status == IntakeStatus.SUBMITTED and submitted.submitted_at is not None
    assert Order.objects.get(pk=order.pk).status == OrderStatus.AWAITING_SCRIPT
    assert submitted.history.first().history_change_reason == "Intake submitted"


def test_submitted_answers_cannot_be_submitted_again(paid_prescription_order):
    intake = send_intake_form(
        order=paid_prescription_order, questionnaire="Weight care intake", actor=ACTOR
    )
    submit_intake(intake=intake, actor=ACTOR)

    with pytest.raises(StateConflict) as refused:
        submit_intake(intake=intake, actor=ACTOR)

    assert refused.value.code == "intake.not_submittable"


def test_a_form_needs_a_questionnaire(paid_prescription_order):
    with pytest.raises(InvalidInput) as refused:
        send_intake_form(order=paid_prescription_order, questionnaire=" ", actor=ACTOR)

    assert refused.value.code == "intake.questionnaire_required"
    assert not paid_prescription_order.intakes.exists()
