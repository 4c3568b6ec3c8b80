"""The outbox: an event commits or rolls back with the change it reports, and is dispatched once
even when the on-commit enqueue is lost."""

from datetime import timedelta

import pytest
from django.db import transaction

from emr.kernel.actors import Actor, Door, acting
from emr.kernel.errors import InvalidInput
from emr.workflows import dispatch
from emr.workflows.models import DispatchStatus, WorkflowEvent
from emr.workflows.outbox import emit
from tests.factories import make_order
from tests.fixtures.celery_worker import publishing_to

pytestmark = pytest.mark.django_db


def quiet_order():
    """An order without its own `order.created`: the test's event is the only one in the outbox."""
    order = make_order()
    WorkflowEvent.objects.all().delete()
    return order


def test_emit_records_the_subject_and_builds_its_payload():
    order = make_order()
    actor = Actor.system("refunds", door=Door.API)

    event = emit("order.refunded", subject=order, actor=actor)

    event.refresh_from_db()
    assert event.event_type == "order.refunded"
    assert event.subject == order
    assert event.subject_key == f"order:{order.pk}"
    assert event.payload["order"]["orderNumber"] == order.number
    assert event.payload["patient"]["firstName"] == order.patient.first_name
    assert event.actor == "system:refunds"
    assert event.dispatch_status == DispatchStatus.PENDING


def test_emit_takes_the_actor_of_the_enclosing_audit_stamp():
    order = make_order()
    with acting(Actor.system("renewals"), reason="renewal"):
        event = emit("order.updated", subject=order)
    assert event.actor == "system:renewals"


def test_a_rolled_back_transaction_emits_nothing(django_capture_on_commit_callbacks):
    order = quiet_order()
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        emit("order.updated", subject=order)
        raise RuntimeError("the change failed")
    assert not WorkflowEvent.objects.exists()
    assert callbacks == []


def test_a_committed_event_whose_enqueue_was_lost_is_dispatched_by_the_sweep(
    django_capture_on_commit_callbacks,
):
    order = quiet_order()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        event = emit("order.updated", subject=order)
    assert len(callbacks) == 1  # the enqueue that never ran

    swept = dispatch.dispatch_pending(older_than=timedelta(0))
    again = dispatch.dispatch_pending(older_than=timedelta(0))

    event.refresh_from_db()
    assert swept == [event.pk]
    assert again == []
    assert event.dispatch_status == DispatchStatus.DISPATCHED
    assert event.dispatch_attempts == 1


def test_the_sweep_leaves_fresh_events_to_their_on_commit_enqueue():
    emit("order.updated", subject=make_order())
    assert dispatch.dispatch_pending() == []


def test_unknown_events_and_wrong_subjects_are_refused():
    order = make_order()
    with pytest.raises(InvalidInput) as unknown:
        emit("order.teleported", subject=order)
    assert unknown.value.code == "workflow.unknown_event"
    with pytest.raises(InvalidInput) as wrong:
        emit("subscription.cancelled", subject=order)
    assert wrong.value.code == "workflow.wrong_subject"


def test_a_caller_built_payload_with_card_data_is_refused():
    with pytest.raises(InvalidInput) as refused:
        emit("order.updated", subject=make_order(), payload={"payment": {"card_last4": "4242"}})
    assert refused.value.code == "workflow.card_data_in_payload"


def test_a_broker_outage_never_fails_the_committed_change(django_capture_on_commit_callbacks):
    order = quiet_order()
    with (
        publishing_to("redis://127.0.0.1:9/0"),  # nothing listens there
        django_capture_on_commit_callbacks(execute=True),
    ):
        event = emit("order.updated", subject=order)  # the enqueue fails after commit, quietly

    assert dispatch.dispatch_pending(older_than=timedelta(0)) == [event.pk]
