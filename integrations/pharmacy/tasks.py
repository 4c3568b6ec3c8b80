"""Celery entry points for pharmacy fulfilment. Thin: load and call the service; each is safe to
run twice (a submitted order is left alone, and DispensePro is idempotent per reference)."""

from celery import shared_task

from integrations.pharmacy import services
from integrations.pharmacy.models import PharmacyOrder


@shared_task(name="pharmacy.send_to_dispensepro")
def send_to_dispensepro(pharmacy_order_id: int) -> None:
    pharmacy_order = PharmacyOrder.objects.filter(pk=pharmacy_order_id).first()
    if pharmacy_order is not None:
        services.send_automatically(pharmacy_order=pharmacy_order)


@shared_task(name="pharmacy.send_unsent_orders")
def send_unsent_orders() -> None:
    services.send_unsent_orders()
