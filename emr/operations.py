"""The figures operators watch, read from the database (and the beat's heartbeat from the
cache) whenever they are asked: /readyz judges them, /metrics exports them. Counts, ages and
sums only: nothing here names a patient or shows a token.

- outbox: workflow events committed but not dispatched yet, and the age of the oldest;
- stuck gateway attempts: PENDING refund attempts and PENDING charges older than their
  janitor's threshold plus one janitor period, i.e. ones the janitor should have resolved;
- money movements: payments by kind, gateway and status, refund attempts by gateway and status.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Min, Sum
from django.utils import timezone

from billing.models import Payment, RefundAttempt
from billing.states import PaymentKind, PaymentStatus, RefundAttemptStatus
from emr.workflows.models import DispatchStatus, WorkflowEvent

BEAT_HEARTBEAT_KEY = "emr:beat-heartbeat"


def record_beat_heartbeat() -> None:
    """What the beat's heartbeat task writes every minute: beat ticked, and a worker ran it."""
    cache.set(BEAT_HEARTBEAT_KEY, time.time(), timeout=None)


def beat_heartbeat_age() -> float | None:
    """Seconds since the last heartbeat, None if there has been none."""
    beat = cache.get(BEAT_HEARTBEAT_KEY)
    return None if beat is None else max(time.time() - float(beat), 0.0)


@dataclass(frozen=True)
class Outbox:
    backlog: int
    lag_seconds: float  # age of the oldest undelivered event; 0 when none


def outbox(now: datetime | None = None) -> Outbox:
    now = now or timezone.now()
    pending = WorkflowEvent.objects.filter(dispatch_status=DispatchStatus.PENDING).aggregate(
        backlog=Count("pk"), oldest=Min("occurred_at")
    )
    oldest = pending["oldest"]
    lag = max((now - oldest).total_seconds(), 0.0) if oldest else 0.0
    return Outbox(backlog=pending["backlog"], lag_seconds=lag)


@dataclass(frozen=True)
class StuckAttempts:
    refund_attempts: int
    charges: int

    @property
    def total(self) -> int:
        return self.refund_attempts + self.charges


def stuck_attempts(now: datetime | None = None) -> StuckAttempts:
    now = now or timezone.now()
    grace = settings.READYZ_JANITOR_GRACE_SECONDS
    refunds_before = now - timedelta(seconds=settings.REFUND_RECONCILE_AFTER_SECONDS + grace)
    charges_before = now - timedelta(seconds=settings.CHARGE_RECONCILE_AFTER_SECONDS + grace)
    return StuckAttempts(
        refund_attempts=RefundAttempt.objects.filter(
            status=RefundAttemptStatus.PENDING, created_at__lt=refunds_before
        ).count(),
        charges=pending_charges().filter(created_at__lt=charges_before).count(),
    )


def pending_charges():
    return Payment.objects.filter(kind=PaymentKind.CHARGE, status=PaymentStatus.PENDING)


def payments_by_outcome() -> list[dict]:
    """[{kind, gateway, status, count, cents}] over every payment row."""
    rows = (
        Payment.objects.order_by()
        .values("kind", "gateway", "status")
        .annotate(count=Count("pk"), cents=Sum("amount_cents"))
    )
    return list(rows)


def refund_attempts_by_outcome() -> list[dict]:
    """[{gateway, status, count}] over every refund attempt."""
    rows = RefundAttempt.objects.order_by().values("gateway", "status").annotate(count=Count("pk"))
    return list(rows)
