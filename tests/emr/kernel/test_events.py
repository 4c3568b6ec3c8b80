"""Domain events: reactions run in order, inside the publisher's transaction."""

from dataclasses import dataclass

import pytest

from emr import reactions
from emr.kernel import events
from emr.kernel.actors import Actor
from emr.kernel.errors import StateConflict
from emr.kernel.services import service_transaction
from emr.models import Patient
from tests.factories import PatientFactory

JOB = Actor.system("tests")


@dataclass(frozen=True)
class PatientRenamed:
    patient: Patient


@pytest.fixture
def reaction_table():
    """Install a table for one test; the real one is back afterwards."""
    yield events.install
    reactions.install()


def test_reactions_run_in_the_order_listed(reaction_table):
    seen = []
    reaction_table(
        {PatientRenamed: [lambda event: seen.append("first"), lambda event: seen.append("second")]}
    )
    events.publish(PatientRenamed(patient=None))
    assert seen == ["first", "second"]


def test_an_event_nobody_reacts_to_is_published_quietly(reaction_table):
    reaction_table({})
    events.publish(PatientRenamed(patient=None))


def test_a_refusing_reaction_rolls_the_publishers_change_back(db, reaction_table):
    def refuse(event):
        raise StateConflict("The reacting app refuses.")

    reaction_table({PatientRenamed: [refuse]})
    patient = PatientFactory(first_name="Ana")
    with pytest.raises(StateConflict), service_transaction(JOB, reason="Rename"):
        patient.first_name = "Bea"
        patient.save()
        events.publish(PatientRenamed(patient=patient))
    patient.refresh_from_db()
    assert patient.first_name == "Ana"


def test_a_reaction_sees_the_change_and_writes_in_the_same_transaction(db, reaction_table):
    def mark(event):
        stored = Patient.objects.get(pk=event.patient.pk)
        stored.last_name = stored.first_name
        stored.save()

    reaction_table({PatientRenamed: [mark]})
    patient = PatientFactory(first_name="Ana", last_name="Old")
    with service_transaction(JOB, reason="Rename"):
        patient.first_name = "Bea"
        patient.save()
        events.publish(PatientRenamed(patient=patient))
    patient.refresh_from_db()
    assert (patient.first_name, patient.last_name) == ("Bea", "Bea")
