from celery import shared_task

from billing.dispute_evidence import resume_evidence_submissions
from billing.packages import announce_expiry
from billing.payments import reconcile_charges
from billing.refund_reconciler import reconcile_refunds


@shared_task(name="billing.reconcile_refunds")
def reconcile_refunds_task() -> int:
    return reconcile_refunds()


@shared_task(name="billing.reconcile_charges")
def reconcile_charges_task() -> int:
    return reconcile_charges()


@shared_task(name="billing.announce_package_expiry")
def announce_package_expiry_task() -> int:
    return announce_expiry()


@shared_task(name="billing.resume_evidence_submissions")
def resume_evidence_submissions_task() -> int:
    return resume_evidence_submissions()
