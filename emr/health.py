"""Health for load balancers, compose and people, as JSON, without sign-in.

- `/healthz`: the process answers (liveness). It touches nothing else, so a database outage
  never makes an orchestrator restart every web process.
- `/readyz`: this process can do its work (readiness): the database answers and has every
  migration applied; the broker answers; the beat's heartbeat is recent; the oldest workflow
  event waiting for delivery is younger than its threshold; few gateway attempts are left
  pending past their janitor. 200 when every check holds, 503 otherwise.

Each check reports `ok`, `value`, `threshold` and a `message`: counts and ages only, never a
patient, a host name, an exception's text or a setting's value. Thresholds are the `READYZ_*`
settings; an age threshold of 0 turns its check off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from emr import operations


@dataclass(frozen=True)
class Check:
    ok: bool
    message: str
    value: float | int | None = None
    threshold: float | int | None = None


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    checks = {
        "database": _database(),
        "migrations": _migrations(),
        "broker": _broker(),
        "beat": _beat(),
        "outbox_lag": _outbox_lag(),
        "stuck_gateway_attempts": _stuck_attempts(),
    }
    ready = all(check.ok for check in checks.values())
    return JsonResponse(
        {
            "status": "ready" if ready else "unavailable",
            "checks": {name: asdict(check) for name, check in checks.items()},
        },
        status=200 if ready else 503,
    )


def _database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        connection.close()  # the next request connects afresh instead of reusing a dead link
        return Check(False, "The database does not answer.")
    return Check(True, "The database answers.")


# Applied migrations only grow while a process runs its code, so once this process has seen
# them all it need not load the migration graph again.
_all_migrations_applied = False


def _migrations() -> Check:
    global _all_migrations_applied
    if _all_migrations_applied:
        return Check(True, "Every migration is applied.", value=0)
    try:
        executor = MigrationExecutor(connection)
        unapplied = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    except DatabaseError:
        connection.close()
        return Check(False, "The database does not answer: migrations unknown.")
    _all_migrations_applied = unapplied == 0
    if unapplied:
        return Check(False, f"{unapplied} migration(s) not applied.", value=unapplied, threshold=0)
    return Check(True, "Every migration is applied.", value=0, threshold=0)


def _broker() -> Check:
    try:
        with current_app.connection_for_write(connect_timeout=2) as broker:
            broker.ensure_connection(max_retries=1, timeout=2)
    except Exception:  # a broker's errors are many (socket, protocol, auth): all mean "no"
        return Check(False, "The broker does not answer.")
    return Check(True, "The broker answers.")


def _beat() -> Check:
    threshold = settings.READYZ_BEAT_MAX_AGE_SECONDS
    if not threshold:
        return Check(True, "Not checked.")
    try:
        age = operations.beat_heartbeat_age()
    except Exception:  # the cache is Redis: unreachable means the heartbeat cannot be read
        return Check(False, "The cache does not answer: beat heartbeat unknown.")
    if age is None:
        return Check(False, "No beat heartbeat seen yet.", threshold=threshold)
    age = round(age, 1)
    if age > threshold:
        return Check(False, f"Beat last seen {age:g} s ago.", value=age, threshold=threshold)
    return Check(True, f"Beat seen {age:g} s ago.", value=age, threshold=threshold)


def _outbox_lag() -> Check:
    threshold = settings.READYZ_OUTBOX_MAX_LAG_SECONDS
    try:
        outbox = operations.outbox()
    except DatabaseError:
        connection.close()
        return Check(False, "The database does not answer: outbox unknown.", threshold=threshold)
    lag = round(outbox.lag_seconds, 1)
    message = f"{outbox.backlog} event(s) waiting; the oldest for {lag:g} s."
    return Check(not threshold or lag <= threshold, message, value=lag, threshold=threshold)


def _stuck_attempts() -> Check:
    threshold = settings.READYZ_MAX_STUCK_ATTEMPTS
    try:
        stuck = operations.stuck_attempts()
    except DatabaseError:
        connection.close()
        return Check(False, "The database does not answer: attempts unknown.", threshold=threshold)
    message = (
        f"{stuck.refund_attempts} refund attempt(s) and {stuck.charges} charge(s) still pending "
        "after their janitor's turn."
    )
    return Check(stuck.total <= threshold, message, value=stuck.total, threshold=threshold)
