"""Celery entry points for pharmacy fulfilment. Thin: load ids and call the service; each is
safe to run twice (a submitted order is left alone, and DispensePro is idempotent per
reference)."""

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from emr.kernel.actors import Actor
from emr.kernel.errors import DomainError
from integrations.pharmacy import services
from integrations.pharmacy.models import PharmacyOrder
from integrations.pharmacy.states import PharmacyOrderStatus
from orders.states import ACTION_ONLY

logger = logging.getLogger(__name__)

SUBMITTER = Actor.system("dispensepro-submission")
# A pending DispensePro order older than this was never tried: its enqueue was lost.
SWEEP_GRACE = timedelta(minutes=2)


@shared_task(name="pharmacy.send_to_dispensepro")
def send_to_dispensepro(pharmacy_order_id: int) -> None:
    pharmacy_order = PharmacyOrder.objects.filter(pk=pharmacy_order_id).first()
    if pharmacy_order is None:
        return
    try:
        services.send_to_dispensepro(
            pharmacy_order=pharmacy_order,
            actor=SUBMITTER,
            reason="Automatic submission: prescription confirmed",
        )
    except DomainError as failure:
        # A failure is recorded on the pharmacy order (FAILED, with the error) for staff.
        logger.warning("DispensePro submission %s refused: %s", pharmacy_order_id, failure.code)


@shared_task(name="pharmacy.send_unsent_orders")
def send_unsent_orders() -> None:
    """Beat sweep: DispensePro orders whose submission was never tried."""
    cutoff = timezone.now() - SWEEP_GRACE
    unsent = (
        PharmacyOrder.objects.filter(
            pharmacy__in=services.API_PHARMACIES,
            status=PharmacyOrderStatus.PENDING,
            created_at__lte=cutoff,
        )
        .exclude(order__status__in=ACTION_ONLY)
        .values_list("pk", flat=True)
    )
    for pharmacy_order_id in unsent[:100]:
        send_to_dispensepro(pharmacy_order_id)
