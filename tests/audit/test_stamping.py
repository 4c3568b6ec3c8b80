import pytest
from django.urls import reverse

from emr.kernel.actors import Actor, Door, acting
from emr.models import Patient
from orders.services import change_status
from orders.states import OrderStatus
from tests.factories import PatientFactory, make_order

pytestmark = pytest.mark.django_db


def test_a_raw_admin_edit_is_stamped_with_the_user_and_the_admin_door(cs_user, admin_client_for):
    patient = PatientFactory(phone="")
    response = admin_client_for(cs_user).post(
        reverse("admin:emr_patient_change", args=[patient.pk]),
        {
            "first_name": patient.first_name,
            "last_name": patient.last_name,
            "email": patient.email,
            "phone": "+1 555 0100",
            "date_of_birth": "",
            "user": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    latest = Patient.history.filter(id=patient.pk).latest("history_id")
    assert (latest.phone, latest.history_actor, latest.history_door) == (
        "+1 555 0100",
        "cs-agent",
        "admin",
    )
    assert latest.history_user_id == cs_user.pk


def test_a_system_job_is_stamped_with_its_name_and_reason():
    with acting(Actor.system("nightly-import", door=Door.COMMAND), reason="CRM sync"):
        patient = PatientFactory()
    record = patient.history.get()
    assert (record.history_actor, record.history_door, record.history_change_reason) == (
        "system:nightly-import",
        "command",
        "CRM sync",
    )
    assert record.history_user is None


def test_without_any_stamp_the_row_says_unknown_shell():
    record = PatientFactory().history.get()
    assert (record.history_actor, record.history_door) == ("unknown", "shell")


def test_a_long_reason_is_shortened_in_history_not_refused(cs_user):
    order = make_order()
    reason = "Patient explained at length why the order should stop. " * 8
    change_status(
        order=order,
        target=OrderStatus.CANCELLED,
        actor=Actor.staff(cs_user, door=Door.API),
        reason=reason,
    )
    recorded = order.history.latest("history_id").history_change_reason
    assert len(recorded) == 100 and recorded.endswith("…")
    assert reason.startswith(recorded[:-1])
