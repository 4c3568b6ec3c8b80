"""Writing the "EMR -> Beluga Logs": every call to Beluga and every webhook from it, redacted.

Log rows are written outside the caller's business transaction on purpose (the calls to Beluga
happen with no transaction open), so a refused or failed action still leaves its log.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from integrations.beluga.models import BelugaLog, BelugaVisit
from integrations.beluga.redaction import redact, scrub
from integrations.http import Exchange, ExchangeRecorder


def _secrets() -> list[str]:
    return [settings.BELUGA_API_KEY, settings.BELUGA_WEBHOOK_SECRET]


def recorder_for(visit: BelugaVisit | None) -> ExchangeRecorder:
    """The `on_exchange` hook for a client working on `visit`."""

    def record(exchange: Exchange) -> None:
        log_exchange(exchange, visit=visit)

    return record


def log_exchange(exchange: Exchange, *, visit: BelugaVisit | None) -> BelugaLog:
    secrets = _secrets()
    return BelugaLog.objects.create(
        visit=visit,
        master_id=exchange.subject,
        direction=BelugaLog.Direction.OUTBOUND,
        operation=exchange.operation,
        method=exchange.method,
        path=exchange.path,
        request_body=redact(exchange.request_body, secrets=secrets),
        http_status=exchange.http_status,
        response_body=redact(exchange.response_body, secrets=secrets),
        error=scrub(exchange.error, secrets=secrets),
        duration_ms=exchange.duration_ms,
    )


def log_webhook(
    *,
    event_type: str,
    master_id: str,
    body: Any,
    visit: BelugaVisit | None,
    http_status: int,
    outcome: str,
    path: str,
) -> BelugaLog:
    """An inbound webhook as it was answered: the (redacted) event and what we did with it."""
    secrets = _secrets()
    return BelugaLog.objects.create(
        visit=visit,
        master_id=master_id,
        direction=BelugaLog.Direction.INBOUND,
        operation=f"webhook:{event_type}"[:40],
        method="POST",
        path=path,
        request_body=redact(body, secrets=secrets),
        http_status=http_status,
        response_body={"outcome": scrub(outcome, secrets=secrets)},
        error="",
    )
