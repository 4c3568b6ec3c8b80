"""The one way to write a service: what a refusal leaves behind, and what the history says."""

import pytest
from django.db import transaction

from emr.kernel.actors import Actor, Door
from emr.kernel.errors import InvalidInput, StateConflict
from emr.kernel.services import require_reason, service_transaction
from emr.models import Patient
from tests.factories import PatientFactory

CS = Actor(label="cs-agent", door=Door.ADMIN)
JOB = Actor.system("nightly-job")


def rename(patient: Patient, name: str, *, actor: Actor, reason: str) -> None:
    with service_transaction(actor, reason=reason):
        patient = Patient.objects.select_for_update().get(pk=patient.pk)
        patient.first_name = name
        patient.save()


def test_a_refusal_inside_a_service_leaves_nothing_behind(db):
    patient = PatientFactory(first_name="Ana")
    with pytest.raises(StateConflict), service_transaction(CS, reason="Renamed"):
        rename(patient, "Bea", actor=CS, reason="Renamed")
        raise StateConflict("Refused after the write.")
    patient.refresh_from_db()
    assert patient.first_name == "Ana"
    assert patient.history.count() == 1  # only the creation


def test_a_refused_inner_service_undoes_only_its_own_writes(db):
    patient = PatientFactory(first_name="Ana")
    other = PatientFactory(first_name="Cy")
    with service_transaction(CS, reason="Outer"):
        rename(patient, "Bea", actor=CS, reason="Outer rename")
        try:
            with service_transaction(CS, reason="Inner"):
                rename(other, "Dee", actor=CS, reason="Inner rename")
                raise StateConflict("The inner service refuses.")
        except StateConflict:
            pass
    patient.refresh_from_db()
    other.refresh_from_db()
    assert (patient.first_name, other.first_name) == ("Bea", "Cy")


def test_each_history_row_carries_its_services_actor_door_and_reason(db):
    patient = PatientFactory(first_name="Ana")
    other = PatientFactory(first_name="Cy")
    with service_transaction(JOB, reason="Outer job"):
        rename(patient, "Bea", actor=JOB, reason="Outer job")
        rename(other, "Dee", actor=CS, reason="Renamed by CS inside the job")
    outer = patient.history.first()
    inner = other.history.first()
    assert (outer.history_actor, outer.history_door, outer.history_change_reason) == (
        "system:nightly-job",
        Door.TASK,
        "Outer job",
    )
    assert (inner.history_actor, inner.history_door, inner.history_change_reason) == (
        "cs-agent",
        Door.ADMIN,
        "Renamed by CS inside the job",
    )


@pytest.mark.django_db(transaction=True)
def test_the_outermost_service_owns_its_transaction():
    # A door that wrapped a service in its own transaction could commit half of it later.
    patient = PatientFactory(first_name="Ana")
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        rename(patient, "Bea", actor=CS, reason="Renamed")
    patient.refresh_from_db()
    assert patient.first_name == "Ana"


def test_a_service_needs_an_actor(db):
    with pytest.raises(TypeError, match="Actor"), service_transaction("cs-agent", reason="x"):
        pass


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_a_blank_reason_is_refused_with_the_prompt(blank):
    with pytest.raises(InvalidInput) as refused:
        require_reason(blank, prompt="Say why the order is cancelled")
    assert refused.value.code == "reason_required"
    assert refused.value.detail == "Say why the order is cancelled: a reason is required."


def test_a_reason_is_kept_without_its_surrounding_blanks():
    assert require_reason("  Patient asked  ") == "Patient asked"
