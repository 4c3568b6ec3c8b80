from celery import shared_task

from billing.payments import reconcile_charges
from billing.refund_reconciler import reconcile_refunds


@shared_task(name="billing.reconcile_refunds")
def reconcile_refunds_task() -> int:
    return reconcile_refunds()


@shared_task(name="billing.reconcile_charges")
def reconcile_charges_task() -> int:
    return reconcile_charges()
