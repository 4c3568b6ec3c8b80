from celery import shared_task

from billing.refunds import reconcile_refunds


@shared_task(name="billing.reconcile_refunds")
def reconcile_refunds_task() -> int:
    return reconcile_refunds()
