"""The Celery app. Tasks take ids only and load what they need; beat entries call services."""

import os

from celery import Celery, signals

from emr.kernel import task_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emr.settings")

app = Celery("emr")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,
    # A task is acknowledged only after it ran, and requeued if its worker dies mid-run: every
    # task must therefore be safe to run twice (work is claimed in the database).
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_soft_time_limit=120,
    task_time_limit=180,
    broker_connection_retry_on_startup=True,
    # Celery's Django fixup closes every database connection before and after each task unless
    # this is set (it then closes them every Nth task instead), which makes each task pay a new
    # PostgreSQL session and ignores CONN_MAX_AGE. Its own closing is switched off here and
    # Django's rules decide instead (`_close_old_connections` below).
    CELERY_DB_REUSE_MAX=2**62,
    timezone="UTC",
    enable_utc=True,
    beat_schedule={
        # The janitors of gateway calls whose answer was lost (each safe to run twice).
        "reconcile-refunds": {"task": "billing.reconcile_refunds", "schedule": 180.0},
        "reconcile-charges": {"task": "billing.reconcile_charges", "schedule": 180.0},
        "resume-evidence-submissions": {
            "task": "billing.resume_evidence_submissions",
            "schedule": 180.0,
        },
        # `expires` drops a sweep that could not start before the next one is due.
        "workflows-sweep-outbox": {
            "task": "workflows.sweep_outbox",
            "schedule": 30.0,
            "options": {"expires": 25},
        },
        # Subscriptions: each task works in batches and queues itself again while more is due.
        "subscriptions-billing-cycle": {
            "task": "subscriptions.run_billing_cycle",
            "schedule": 900.0,
        },
        "subscriptions-recovery-retries": {
            "task": "subscriptions.retry_recovery_charges",
            "schedule": 900.0,
        },
        "subscriptions-upcoming-renewals": {
            "task": "subscriptions.send_upcoming_renewal_notices",
            "schedule": 3600.0,
        },
        "subscriptions-scheduled-changes": {
            "task": "subscriptions.run_scheduled_changes",
            "schedule": 600.0,
        },
        "workflows-resume-waits": {
            "task": "workflows.resume_waits",
            "schedule": 10.0,
            "options": {"expires": 9},
        },
        # package.expiring / package.expired, once per package (the sweep marks what it sent).
        "billing-package-expiry": {"task": "billing.announce_package_expiry", "schedule": 3600.0},
        # Submissions whose on-commit enqueue was lost (each task is safe to run twice).
        "beluga-submit-unsent-visits": {"task": "beluga.submit_unsent_visits", "schedule": 120.0},
        "pharmacy-send-unsent-orders": {"task": "pharmacy.send_unsent_orders", "schedule": 120.0},
        # Tamper evidence: seal new history rows into the chain; once a day, record its head.
        "audit-seal-chain": {
            "task": "audit.seal_chain",
            "schedule": 60.0,
            "options": {"expires": 55},
        },
        "audit-chain-digest": {"task": "audit.write_chain_digest", "schedule": 86400.0},
        # What /readyz reads to know beat (and a worker behind it) is alive.
        "beat-heartbeat": {
            "task": "emr.beat_heartbeat",
            "schedule": 60.0,
            "options": {"expires": 55},
        },
    },
)


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(sender=None, **_) -> None:
    """Around every task, what Django does around every request: keep a connection until
    CONN_MAX_AGE, close one that saw an error and is unusable, and mark the others for the
    health check (CONN_HEALTH_CHECKS) their next query runs first, so a connection the server
    dropped (restart, failover, pg_terminate_backend) is replaced before a task uses it. A new
    worker process opens its own connections (the fixup closes inherited ones at start)."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # run in the caller's process, maybe inside its transaction: not ours to close
    from django.db import close_old_connections

    close_old_connections()


app.autodiscover_tasks()
# Request ids into task headers and one log line per task, in every process that loads the app.
task_logging.connect()
