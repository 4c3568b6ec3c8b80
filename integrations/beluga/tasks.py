"""Celery entry points for Beluga. Thin: load ids and call the service; each is safe to run
twice (a submitted visit is left alone, and Beluga is idempotent per masterId)."""

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from emr.kernel.actors import Actor
from emr.kernel.errors import DomainError
from integrations.beluga import services
from integrations.beluga.models import BelugaVisit
from integrations.beluga.states import SubmitStatus
from orders.states import ACTION_ONLY

logger = logging.getLogger(__name__)

SUBMITTER = Actor.system("beluga-submission")
# A visit row older than this and never tried means its on-commit enqueue was lost.
SWEEP_GRACE = timedelta(minutes=2)


@shared_task(name="beluga.submit_visit")
def submit_visit(visit_id: int) -> None:
    visit = BelugaVisit.objects.filter(pk=visit_id).first()
    if visit is None:
        return
    try:
        services.submit_visit(
            visit=visit, actor=SUBMITTER, reason="Automatic submission: the order awaits a script"
        )
    except DomainError as failure:
        # A Beluga failure is recorded on the visit (FAILED, with the error) for staff to see
        # and retry; a closed order is simply not submitted.
        logger.warning("Beluga submission of visit %s refused: %s", visit_id, failure.code)


@shared_task(name="beluga.submit_unsent_visits")
def submit_unsent_visits() -> None:
    """Beat sweep: visits whose submission was never tried (their enqueue was lost)."""
    if not services.is_configured():
        return
    cutoff = timezone.now() - SWEEP_GRACE
    unsent = (
        BelugaVisit.objects.filter(submit_status=SubmitStatus.NOT_SUBMITTED, created_at__lte=cutoff)
        .exclude(order__status__in=ACTION_ONLY)
        .values_list("pk", flat=True)
    )
    for visit_id in unsent[:100]:
        submit_visit(visit_id)
