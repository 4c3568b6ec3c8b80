"""Celery entry points for Beluga. Thin: load and call the service; each is safe to run twice (a
submitted visit is left alone, and Beluga is idempotent per masterId)."""

from celery import shared_task

from integrations.beluga import services
from integrations.beluga.models import BelugaVisit


@shared_task(name="beluga.submit_visit")
def submit_visit(visit_id: int) -> None:
    visit = BelugaVisit.objects.filter(pk=visit_id).first()
    if visit is not None:
        services.submit_automatically(visit=visit)


@shared_task(name="beluga.submit_unsent_visits")
def submit_unsent_visits() -> None:
    services.submit_unsent_visits()
