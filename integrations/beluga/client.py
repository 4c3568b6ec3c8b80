"""The Beluga Health API client.

Beluga publishes no public API reference. This is the smallest plausible contract, and
`integrations/fakes/beluga.py` serves exactly this one: change the two together.

Base URL: `BELUGA_API_URL` (paths below are relative to it). Authentication: the header
`Authorization: Bearer <BELUGA_API_KEY>`. Bodies are JSON both ways.

Every answer is an envelope, `{"status": "success", "data": {…}}` or
`{"status": "error", "error": "<message>"}`. Beluga reports errors in the body *as well as* by
HTTP status: an error may arrive with HTTP 200, and an HTTP error may carry no JSON at all (a
proxy's HTML page). Anything but a success envelope with HTTP 2xx is an error.

    POST /visits                    {"masterId", "patient": {…}, "formObj": {…}, "products": […]}
        -> data: visit. Idempotent per masterId: sending a masterId Beluga already has answers
           that visit unchanged, so a retry after a timeout never creates a second visit.
    GET  /visits/{masterId}         -> data: visit
    POST /visits/{masterId}/cancel  {"reason"}
        -> data: visit, now visitStatus "canceled", resolvedStatus "closed". Idempotent:
           cancelling a cancelled visit answers it unchanged. A resolved visit cannot be
           cancelled (an error).
    An unknown masterId is HTTP 404 with an error envelope.

    visit = {"masterId", "visitStatus": "pending" | "active" | "admin" | "holding" | "resolved"
             | "canceled", "resolvedStatus": "open" | "closed"}

`masterId` is ours: we choose it when the visit is created, and it names the visit at Beluga.
Webhooks (Beluga -> us) are described in `integrations/beluga/webhooks.py`.

The client knows no Django models. Each request/response pair is handed to `on_exchange` (the
service writes it, redacted, to BelugaLog); headers are never part of it, so the API key cannot
reach the log that way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from urllib3.exceptions import NewConnectionError

from emr.kernel.errors import IntegrationFailed
from integrations.beluga.errors import (
    BelugaError,
    BelugaNotConfigured,
    BelugaTimeout,
    BelugaUnreachable,
)

MAX_LOGGED_TEXT = 2000  # a non-JSON answer (an HTML error page) is kept this long in the log
MAX_MESSAGE = 300


@dataclass(frozen=True)
class Visit:
    """A visit as Beluga describes it."""

    master_id: str
    visit_status: str
    resolved_status: str


@dataclass(frozen=True)
class Exchange:
    """One request to Beluga and what came back (or did not)."""

    operation: str  # submit_visit, get_visit, cancel_visit
    method: str
    path: str
    master_id: str
    request_body: dict[str, Any] | None
    http_status: int | None  # None: no answer arrived
    response_body: Any  # the parsed JSON, or the answer's text when it was not JSON
    error: str  # "" when Beluga answered with success
    duration_ms: int


ExchangeRecorder = Callable[[Exchange], None]


class BelugaClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float,
        on_exchange: ExchangeRecorder | None = None,
    ):
        if not base_url or not api_key:
            raise BelugaNotConfigured()
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.on_exchange = on_exchange

    @classmethod
    def from_settings(cls, *, on_exchange: ExchangeRecorder | None = None) -> BelugaClient:
        return cls(
            base_url=settings.BELUGA_API_URL,
            api_key=settings.BELUGA_API_KEY,
            timeout=settings.GATEWAY_TIMEOUT_SECONDS,
            on_exchange=on_exchange,
        )

    def submit_visit(
        self,
        *,
        master_id: str,
        patient: dict[str, Any],
        form: dict[str, Any],
        products: list[dict[str, Any]],
    ) -> Visit:
        body = {"masterId": master_id, "patient": patient, "formObj": form, "products": products}
        data = self._call("submit_visit", "POST", "/visits", master_id=master_id, body=body)
        return _visit_from(data)

    def get_visit(self, *, master_id: str) -> Visit:
        data = self._call("get_visit", "GET", _visit_path(master_id), master_id=master_id)
        return _visit_from(data)

    def cancel_visit(self, *, master_id: str, reason: str) -> Visit:
        path = f"{_visit_path(master_id)}/cancel"
        data = self._call(
            "cancel_visit", "POST", path, master_id=master_id, body={"reason": reason}
        )
        return _visit_from(data)

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        master_id: str,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        started = time.monotonic()
        response: requests.Response | None = None
        answer: Any = None
        error = ""
        try:
            response = self._send(method, path, body, operation)
            answer = _parse(response)
            return _data_from(answer, response)
        except IntegrationFailed as failure:
            error = failure.detail
            raise
        finally:
            self._record(
                Exchange(
                    operation=operation,
                    method=method,
                    path=path,
                    master_id=master_id,
                    request_body=body,
                    http_status=response.status_code if response is not None else None,
                    response_body=answer,
                    error=error,
                    duration_ms=round((time.monotonic() - started) * 1000),
                )
            )

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None, operation: str
    ) -> requests.Response:
        readable = operation.replace("_", " ")
        try:
            return requests.request(
                method,
                f"{self.base_url}{path}",
                json=body,
                headers={"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"},
                timeout=self.timeout,
            )
        except requests.ConnectTimeout as failure:
            raise BelugaUnreachable("the connection timed out") from failure
        except requests.Timeout as failure:
            raise BelugaTimeout(
                what_happened=f"did not answer within {self.timeout:g} seconds",
                operation=readable,
            ) from failure
        except requests.ConnectionError as failure:
            if _never_connected(failure):
                raise BelugaUnreachable("the connection was refused") from failure
            # The request went out and the connection closed before an answer came back.
            raise BelugaTimeout(
                what_happened="closed the connection without answering", operation=readable
            ) from failure

    def _record(self, exchange: Exchange) -> None:
        if self.on_exchange is not None:
            self.on_exchange(exchange)


def _visit_path(master_id: str) -> str:
    return f"/visits/{quote(master_id, safe='')}"


def _parse(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:MAX_LOGGED_TEXT]


def _data_from(answer: Any, response: requests.Response) -> dict[str, Any]:
    envelope = answer if isinstance(answer, dict) else {}
    if response.ok and envelope.get("status") == "success":
        data = envelope.get("data")
        if isinstance(data, dict):
            return data
        raise BelugaError("Beluga answered success without the visit.", http_status=200)
    raise BelugaError(_error_message(envelope, response), http_status=response.status_code)


def _error_message(envelope: dict[str, Any], response: requests.Response) -> str:
    message = envelope.get("error") or envelope.get("message")
    if isinstance(message, dict):  # {"error": {"message": …}} from an upstream proxy
        message = message.get("message")
    if not message:
        message = f"HTTP {response.status_code} {response.reason or ''}".strip()
        if response.ok:
            message = "an answer that is not a success"
    text = str(message).strip()[:MAX_MESSAGE]
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _visit_from(data: dict[str, Any]) -> Visit:
    try:
        return Visit(
            master_id=str(data["masterId"]),
            visit_status=str(data["visitStatus"]),
            resolved_status=str(data.get("resolvedStatus") or ""),
        )
    except KeyError as missing:
        raise BelugaError(f"Beluga's answer lacks {missing.args[0]}.") from None


def _never_connected(failure: requests.ConnectionError) -> bool:
    reason = getattr(failure.args[0] if failure.args else None, "reason", None)
    return isinstance(reason, NewConnectionError)
