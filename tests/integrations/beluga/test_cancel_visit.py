"""cancel_visit against the fake Beluga: the visit is cancelled at Beluga and here, and nothing
else changes (refunds-cancellations-guide.txt, "Beluga Visit Cancellation")."""

import pytest

from billing.models import Invoice, Payment
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import DomainError, InvalidInput
from emr.workflows.models import WorkflowEvent
from integrations.beluga import services
from integrations.beluga.models import BelugaLog, BelugaVisit
from integrations.beluga.states import ResolvedStatus, SubmitStatus, VisitStatus
from integrations.pharmacy.models import PharmacyOrder
from integrations.pharmacy.states import PharmacyType
from orders.states import OrderStatus
from tests.fixtures.beluga import order_awaiting_script, snapshot, submitted_visit

pytestmark = pytest.mark.django_db

REASON = "Patient no longer wants the consultation"


@pytest.fixture
def actor(cs_user):
    return Actor.staff(cs_user, door=Door.ADMIN)


@pytest.fixture
def visit(beluga):
    return submitted_visit(order_awaiting_script(with_subscription=True))


def cancelled_events(order):
    return WorkflowEvent.objects.filter(
        event_type="beluga.visit_cancelled", subject_key=f"order:{order.pk}"
    )


def everything_around(visit):
    """The order, invoice, payments, subscription and pharmacy orders of the visit's order."""
    order = visit.order
    invoice = Invoice.objects.get(order=order)
    return snapshot(
        order,
        invoice,
        *Payment.objects.filter(invoice=invoice),
        order.subscription,
        *PharmacyOrder.objects.filter(order=order),
    )


def test_cancel_cancels_at_beluga_and_here(visit, beluga, actor):
    services.cancel_visit(visit=visit, actor=actor, reason=REASON)

    visit.refresh_from_db()
    assert (visit.status, visit.resolved_status) == (VisitStatus.CANCELED, ResolvedStatus.CLOSED)
    assert visit.cancelled_at is not None
    at_beluga = beluga.visits()[visit.master_id]
    assert (at_beluga["visitStatus"], at_beluga["resolvedStatus"]) == ("canceled", "closed")
    cancel_request = beluga.requests()[-1]
    assert cancel_request["path"] == f"/visits/{visit.master_id}/cancel"
    assert cancel_request["body"] == {"reason": REASON}
    last = visit.history.latest("history_id")
    assert (last.history_actor, last.history_door, last.history_change_reason) == (
        "cs-agent",
        "admin",
        REASON,
    )


def test_cancel_emits_beluga_visit_cancelled_once(visit, actor):
    services.cancel_visit(visit=visit, actor=actor, reason=REASON)

    event = cancelled_events(visit.order).get()
    assert event.actor == "cs-agent"
    assert event.payload["order"]["orderNumber"] == visit.order.number


def test_cancel_leaves_order_invoice_payments_subscription_and_pharmacy_order_as_they_were(
    visit, actor
):
    order = visit.order
    PharmacyOrder.objects.create(order=order, pharmacy=PharmacyType.OWN, reference="PH-TEST-1")
    before = everything_around(visit)
    assert order.status == OrderStatus.AWAITING_SCRIPT

    services.cancel_visit(visit=visit, actor=actor, reason=REASON)

    assert everything_around(visit) == before
    assert [kind for kind, _, _ in before] == [
        "Order",
        "Invoice",
        "Payment",
        "Subscription",
        "PharmacyOrder",
    ]


@pytest.mark.parametrize(
    ("fault", "extra", "message"),
    [
        ("error_in_body", {"message": "Visit locked by physician"}, "Visit locked by physician"),
        ("http_error", {"status": 503, "message": "Maintenance window"}, "Maintenance window"),
        ("html_error", {}, "HTTP 502 Bad Gateway"),
    ],
)
def test_beluga_errors_become_clear_errors_and_change_nothing(
    visit, beluga, actor, fault, extra, message
):
    before = [*snapshot(visit), *everything_around(visit)]
    beluga.inject(fault, on="cancel", **extra)

    with pytest.raises(DomainError) as refused:
        services.cancel_visit(visit=visit, actor=actor, reason=REASON)

    assert refused.value.code == "beluga.error"
    assert refused.value.http_status == 502
    assert message in refused.value.detail
    assert [*snapshot(visit), *everything_around(visit)] == before
    assert not cancelled_events(visit.order).exists()
    failed_call = BelugaLog.objects.filter(visit=visit, operation="cancel_visit").get()
    assert message in failed_call.error


def test_beluga_refusing_in_a_200_answer_is_an_error(visit, beluga, actor):
    # Beluga resolved the visit; our webhook has not arrived yet, so we still think it is open.
    beluga.set_status(visit.master_id, "resolved", "closed")
    before = snapshot(visit)

    with pytest.raises(DomainError) as refused:
        services.cancel_visit(visit=visit, actor=actor, reason=REASON)

    assert refused.value.code == "beluga.error"
    assert "Visit is resolved and cannot be canceled" in refused.value.detail
    assert snapshot(visit) == before
    assert BelugaLog.objects.filter(visit=visit, operation="cancel_visit").get().http_status == 200


def test_timeout_changes_nothing_and_a_retry_records_it_once(visit, beluga, actor, settings):
    settings.GATEWAY_TIMEOUT_SECONDS = 0.3
    before = [*snapshot(visit), *everything_around(visit)]
    beluga.inject("hang", on="cancel", seconds=1.0)

    with pytest.raises(DomainError) as refused:
        services.cancel_visit(visit=visit, actor=actor, reason=REASON)

    assert refused.value.code == "beluga.timeout"
    assert "Trying again is safe" in refused.value.detail
    assert [*snapshot(visit), *everything_around(visit)] == before
    # Beluga did cancel it: the outcome was unknown to us, not to Beluga.
    assert beluga.visits()[visit.master_id]["visitStatus"] == "canceled"

    services.cancel_visit(visit=visit, actor=actor, reason=REASON)
    assert BelugaVisit.objects.get(pk=visit.pk).status == VisitStatus.CANCELED
    assert cancelled_events(visit.order).count() == 1


def test_a_dropped_answer_is_an_unknown_outcome_too(visit, beluga, actor):
    beluga.inject("drop", on="cancel")

    with pytest.raises(DomainError) as refused:
        services.cancel_visit(visit=visit, actor=actor, reason=REASON)

    assert refused.value.code == "beluga.timeout"
    assert BelugaVisit.objects.get(pk=visit.pk).status == VisitStatus.PENDING


def test_cancelling_twice_is_refused_without_calling_beluga(visit, beluga, actor):
    services.cancel_visit(visit=visit, actor=actor, reason=REASON)
    calls = len(beluga.requests())

    with pytest.raises(DomainError) as refused:
        services.cancel_visit(visit=visit, actor=actor, reason="again")

    assert refused.value.code == "beluga.already_cancelled"
    assert refused.value.http_status == 409
    assert len(beluga.requests()) == calls
    assert cancelled_events(visit.order).count() == 1


def test_a_resolved_visit_cannot_be_cancelled(visit, beluga, actor):
    # In real life Beluga's VISIT_CONCLUDED webhook resolves it.
    visit = BelugaVisit.objects.get(pk=visit.pk)
    visit.status = VisitStatus.RESOLVED
    visit.save()
    calls = len(beluga.requests())

    with pytest.raises(DomainError) as refused:
        services.cancel_visit(visit=visit, actor=actor, reason=REASON)

    assert refused.value.code == "beluga.already_resolved"
    assert len(beluga.requests()) == calls


def test_an_unsubmitted_visit_has_nothing_to_cancel(beluga, actor):
    visit = services.submit_visit_if_needed(order=order_awaiting_script(), actor=actor)
    assert visit.submit_status == SubmitStatus.NOT_SUBMITTED

    with pytest.raises(DomainError) as refused:
        services.cancel_visit(visit=visit, actor=actor, reason=REASON)

    assert refused.value.code == "beluga.not_submitted"
    assert beluga.requests() == []


def test_a_reason_is_required(visit, beluga, actor):
    with pytest.raises(InvalidInput):
        services.cancel_visit(visit=visit, actor=actor, reason="   ")
    assert BelugaVisit.objects.get(pk=visit.pk).status == VisitStatus.PENDING


def test_not_configured_is_a_clear_error(visit, actor, settings):
    settings.BELUGA_API_KEY = ""

    with pytest.raises(DomainError) as refused:
        services.cancel_visit(visit=visit, actor=actor, reason=REASON)

    assert refused.value.code == "beluga.not_configured"
    assert BelugaVisit.objects.get(pk=visit.pk).status == VisitStatus.PENDING
