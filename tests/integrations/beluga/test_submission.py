"""Submitting visits to Beluga: automatic when an order reaches AWAITING_SCRIPT (skipped when
already submitted), and retried by staff after a failure."""

import pytest
from django.utils import timezone

from emr.kernel.actors import Actor, Door
from emr.kernel.errors import DomainError
from integrations.beluga import services
from integrations.beluga.models import BelugaVisit
from integrations.beluga.states import ResolvedStatus, SubmitStatus, VisitStatus
from tests.fixtures.beluga import order_awaiting_script

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("order-recalculation")


@pytest.fixture
def staff(cs_user):
    return Actor.staff(cs_user, door=Door.ADMIN)


def test_reaching_awaiting_script_submits_the_visit_after_commit(
    beluga, celery_eager, django_capture_on_commit_callbacks
):
    order = order_awaiting_script()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        visit = services.submit_visit_if_needed(order=order, actor=SYSTEM)
        # Nothing has gone to Beluga inside the caller's transaction.
        assert beluga.requests() == []

    assert len(callbacks) == 1
    visit.refresh_from_db()
    assert visit.master_id.startswith(f"{order.number}-")
    assert (visit.submit_status, visit.status, visit.resolved_status) == (
        SubmitStatus.SUBMITTED,
        VisitStatus.PENDING,
        ResolvedStatus.OPEN,
    )
    assert visit.submitted_at is not None
    assert list(beluga.visits()) == [visit.master_id]
    sent = beluga.requests()[0]["body"]
    assert sent["patient"]["email"] == order.patient.email
    assert sent["products"][0]["name"] == order.items.get().description


def test_an_already_submitted_visit_is_skipped(beluga, django_capture_on_commit_callbacks):
    order = order_awaiting_script()
    visit = services.submit_visit_if_needed(order=order, actor=SYSTEM)
    services.submit_visit(visit=visit, actor=SYSTEM)

    with django_capture_on_commit_callbacks() as callbacks:
        again = services.submit_visit_if_needed(order=order, actor=SYSTEM)

    assert again.pk == visit.pk
    assert callbacks == []
    assert BelugaVisit.objects.count() == 1
    assert len(beluga.requests()) == 1


def test_nothing_happens_when_beluga_is_not_configured(settings):
    settings.BELUGA_API_URL = ""
    order = order_awaiting_script()

    assert services.submit_visit_if_needed(order=order, actor=SYSTEM) is None
    assert not BelugaVisit.objects.exists()


def test_a_failed_submission_is_recorded_and_staff_can_retry(beluga, staff):
    visit = services.submit_visit_if_needed(order=order_awaiting_script(), actor=SYSTEM)
    beluga.inject("error_in_body", on="submit", message="Missing patient state")

    with pytest.raises(DomainError) as failed:
        services.submit_visit(visit=visit, actor=SYSTEM)

    visit.refresh_from_db()
    assert failed.value.code == "beluga.error"
    assert visit.submit_status == SubmitStatus.FAILED
    assert "Missing patient state" in visit.submit_error
    assert visit.status == VisitStatus.UNKNOWN

    services.retry_submission(visit=visit, actor=staff, reason="Patient added their state")

    visit.refresh_from_db()
    assert (visit.submit_status, visit.submit_error, visit.submit_attempts) == (
        SubmitStatus.SUBMITTED,
        "",
        2,
    )
    assert visit.history.latest("history_id").history_change_reason == (
        "Submission retried: Patient added their state"
    )


def test_a_timed_out_submission_retried_makes_one_visit_at_beluga(beluga, staff, settings):
    settings.GATEWAY_TIMEOUT_SECONDS = 0.3
    visit = services.submit_visit_if_needed(order=order_awaiting_script(), actor=SYSTEM)
    beluga.inject("hang", on="submit", seconds=1.0)

    with pytest.raises(DomainError) as failed:
        services.submit_visit(visit=visit, actor=SYSTEM)
    assert failed.value.code == "beluga.timeout"
    assert BelugaVisit.objects.get(pk=visit.pk).submit_status == SubmitStatus.FAILED

    services.retry_submission(visit=visit, actor=staff, reason="Timed out")

    assert BelugaVisit.objects.get(pk=visit.pk).submit_status == SubmitStatus.SUBMITTED
    assert list(beluga.visits()) == [visit.master_id]


def test_a_submitted_visit_is_not_retried(beluga, staff):
    visit = services.submit_visit_if_needed(order=order_awaiting_script(), actor=SYSTEM)
    services.submit_visit(visit=visit, actor=SYSTEM)

    with pytest.raises(DomainError) as refused:
        services.retry_submission(visit=visit, actor=staff, reason="again")

    assert refused.value.code == "beluga.already_submitted"
    assert len(beluga.requests()) == 1


def test_the_sweep_submits_visits_whose_enqueue_was_lost(beluga, time_machine):
    from integrations.beluga import tasks

    visit = services.submit_visit_if_needed(order=order_awaiting_script(), actor=SYSTEM)
    tasks.submit_unsent_visits()
    assert BelugaVisit.objects.get(pk=visit.pk).submit_status == SubmitStatus.NOT_SUBMITTED

    time_machine.move_to(timezone.now() + services.SWEEP_GRACE * 2)
    tasks.submit_unsent_visits()
    assert BelugaVisit.objects.get(pk=visit.pk).submit_status == SubmitStatus.SUBMITTED


def test_a_closed_order_is_not_submitted(beluga, staff):
    from orders.services import change_status
    from orders.states import OrderStatus

    order = order_awaiting_script()
    visit = services.submit_visit_if_needed(order=order, actor=SYSTEM)
    change_status(order=order, target=OrderStatus.CANCELLED, actor=staff, reason="Patient left")

    with pytest.raises(DomainError) as refused:
        services.submit_visit(visit=visit, actor=SYSTEM)

    assert refused.value.code == "beluga.order_closed"
    assert beluga.requests() == []
    assert BelugaVisit.objects.get(pk=visit.pk).submit_status == SubmitStatus.NOT_SUBMITTED
