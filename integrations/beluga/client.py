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

The request, the timeout, the transport failures and the exchange log hook are the shared JSON
client's (integrations/http.py); this module says what Beluga's answers mean. Each
request/response pair is handed to `on_exchange` (the service writes it, redacted, to
BelugaLog).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from integrations.beluga.errors import (
    BelugaError,
    BelugaNotConfigured,
    BelugaTimeout,
    BelugaUnreachable,
)
from integrations.http import JsonApiClient


@dataclass(frozen=True)
class Visit:
    """A visit as Beluga describes it."""

    master_id: str
    visit_status: str
    resolved_status: str


class BelugaClient(JsonApiClient):
    partner = "Beluga"
    url_setting, key_setting = "BELUGA_API_URL", "BELUGA_API_KEY"
    not_configured = BelugaNotConfigured
    unreachable = BelugaUnreachable
    timed_out = BelugaTimeout

    def submit_visit(
        self,
        *,
        master_id: str,
        patient: dict[str, Any],
        form: dict[str, Any],
        products: list[dict[str, Any]],
    ) -> Visit:
        body = {"masterId": master_id, "patient": patient, "formObj": form, "products": products}
        data = self.request("submit_visit", "POST", "/visits", subject=master_id, body=body)
        return _visit_from(data)

    def get_visit(self, *, master_id: str) -> Visit:
        data = self.request("get_visit", "GET", _visit_path(master_id), subject=master_id)
        return _visit_from(data)

    def cancel_visit(self, *, master_id: str, reason: str) -> Visit:
        path = f"{_visit_path(master_id)}/cancel"
        data = self.request(
            "cancel_visit", "POST", path, subject=master_id, body={"reason": reason}
        )
        return _visit_from(data)

    def interpret(self, answer: Any, response: requests.Response) -> dict[str, Any]:
        envelope = answer if isinstance(answer, dict) else {}
        if response.ok and envelope.get("status") == "success":
            data = envelope.get("data")
            if isinstance(data, dict):
                return data
            raise BelugaError("Beluga answered success without the visit.", http_status=200)
        raise BelugaError(
            self.sentence(_error_message(envelope, response)), http_status=response.status_code
        )


def _visit_path(master_id: str) -> str:
    return f"/visits/{quote(master_id, safe='')}"


def _error_message(envelope: dict[str, Any], response: requests.Response) -> str:
    message = envelope.get("error") or envelope.get("message")
    if isinstance(message, dict):  # {"error": {"message": …}} from an upstream proxy
        message = message.get("message")
    if message:
        return message
    if response.ok:
        return "an answer that is not a success"
    return f"HTTP {response.status_code} {response.reason or ''}".strip()


def _visit_from(data: dict[str, Any]) -> Visit:
    try:
        return Visit(
            master_id=str(data["masterId"]),
            visit_status=str(data["visitStatus"]),
            resolved_status=str(data.get("resolvedStatus") or ""),
        )
    except KeyError as missing:
        raise BelugaError(f"Beluga's answer lacks {missing.args[0]}.") from None
