"""`/metrics` for Prometheus: for signed-in staff, and for a scraper that sends
`Authorization: Bearer <METRICS_TOKEN>`.

Two sources, one page:
- the processes' counters and histograms (emr/kernel/metrics.py): with
  `PROMETHEUS_MULTIPROC_DIR` set, summed over every gunicorn and Celery process that shares the
  directory; without it, this process's own;
- the database's truth, read now (emr/operations.py): payments and refund attempts by gateway
  and status, the outbox backlog and lag, pending and stuck gateway attempts, the beat
  heartbeat's age. Gauges, so any web process answers the same, whichever process did the work.
"""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from emr import operations


@never_cache
def metrics(request):
    if not _allowed(request):
        return JsonResponse(
            {
                "code": "metrics.forbidden",
                "detail": "Sign in as staff, or send the metrics bearer token.",
            },
            status=403,
        )
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseFigures())
    body = generate_latest(_process_registry()) + generate_latest(database)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def _allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and user.is_staff)


def _process_registry():
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


class DatabaseFigures:
    def collect(self):
        payments = GaugeMetricFamily(
            "emr_payments",
            "Payment rows by kind, gateway and status.",
            labels=["kind", "gateway", "status"],
        )
        payment_cents = GaugeMetricFamily(
            "emr_payments_cents",
            "Sum of payment amounts (cents) by kind, gateway and status.",
            labels=["kind", "gateway", "status"],
        )
        for row in operations.payments_by_outcome():
            labels = [row["kind"].lower(), row["gateway"], row["status"].lower()]
            payments.add_metric(labels, row["count"])
            payment_cents.add_metric(labels, row["cents"] or 0)
        attempts = GaugeMetricFamily(
            "emr_refund_attempts",
            "Refund attempts by gateway and status.",
            labels=["gateway", "status"],
        )
        pending = GaugeMetricFamily(
            "emr_pending_gateway_attempts",
            "Refund attempts and charges waiting for the gateway's answer.",
            labels=["kind"],
        )
        pending_refunds = 0
        for row in operations.refund_attempts_by_outcome():
            attempts.add_metric([row["gateway"], row["status"].lower()], row["count"])
            if row["status"] == "PENDING":
                pending_refunds += row["count"]
        pending.add_metric(["refund_attempt"], pending_refunds)
        pending.add_metric(["charge"], operations.pending_charges().count())
        stuck = operations.stuck_attempts()
        stuck_family = GaugeMetricFamily(
            "emr_stuck_gateway_attempts",
            "Pending attempts older than their janitor's threshold plus one janitor period.",
            labels=["kind"],
        )
        stuck_family.add_metric(["refund_attempt"], stuck.refund_attempts)
        stuck_family.add_metric(["charge"], stuck.charges)
        outbox = operations.outbox()
        yield from (payments, payment_cents, attempts, pending, stuck_family)
        yield GaugeMetricFamily(
            "emr_outbox_backlog",
            "Workflow events committed, not dispatched yet.",
            value=outbox.backlog,
        )
        yield GaugeMetricFamily(
            "emr_outbox_lag_seconds",
            "Age of the oldest undispatched workflow event.",
            value=outbox.lag_seconds,
        )
        age = operations.beat_heartbeat_age()
        if age is not None:
            yield GaugeMetricFamily(
                "emr_beat_heartbeat_age_seconds",
                "Seconds since the beat's heartbeat task ran.",
                value=age,
            )
