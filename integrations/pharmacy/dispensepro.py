"""The DispensePro pharmacy API client.

DispensePro publishes no public API reference. This is the smallest plausible contract, and
`integrations/fakes/dispensepro.py` serves exactly this one: change the two together.

Base URL: `DISPENSEPRO_API_URL` (paths below are relative to it). Authentication: the header
`Authorization: Bearer <DISPENSEPRO_API_KEY>`. JSON both ways.

    POST /orders              {"reference", "patient": {…}, "items": [{"medication", "quantity"}],
                               "prescriber"}
        -> 201 order. Idempotent per `reference` (ours): a reference DispensePro already has
           answers 200 with that order, so a retry after a timeout never fills twice.
    GET  /orders/{id}         -> 200 order
    POST /orders/{id}/void    {"reason"}
        -> 200 order, now "voided". Only before shipment: a shipped order answers 409
           `already_shipped`. Voiding a voided order answers it unchanged (idempotent).

    order = {"id": "dp_…", "reference", "status": "received" | "in_process" | "shipped" |
             "voided", "shippedAt": ISO 8601 | null, "carrier": str | null,
             "trackingNumber": str | null}
    error = HTTP 4xx/5xx with {"error": {"code": "unauthorized" | "not_found" | "invalid" |
             "already_shipped" | "internal", "message": "…"}}

Webhooks (DispensePro -> us) are described in `integrations/pharmacy/webhooks.py`.
The client knows no Django models and never logs a header or the key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from urllib3.exceptions import NewConnectionError

from integrations.pharmacy.errors import (
    AlreadyShipped,
    PharmacyError,
    PharmacyNotConfigured,
    PharmacyTimeout,
    PharmacyUnreachable,
)

logger = logging.getLogger(__name__)

MAX_MESSAGE = 300

# DispensePro's own status names.
RECEIVED, IN_PROCESS, SHIPPED, VOIDED = "received", "in_process", "shipped", "voided"


@dataclass(frozen=True)
class DispenseProOrder:
    id: str
    reference: str
    status: str
    shipped_at: str | None = None
    carrier: str = ""
    tracking_number: str = ""

    @classmethod
    def from_json(cls, data: Any) -> DispenseProOrder:
        if not isinstance(data, dict) or not data.get("id") or not data.get("status"):
            raise PharmacyError("DispensePro answered without the order.")
        return cls(
            id=str(data["id"]),
            reference=str(data.get("reference") or ""),
            status=str(data["status"]),
            shipped_at=data.get("shippedAt") or None,
            carrier=str(data.get("carrier") or ""),
            tracking_number=str(data.get("trackingNumber") or ""),
        )


class DispenseProClient:
    def __init__(self, *, base_url: str, api_key: str, timeout: float):
        if not base_url or not api_key:
            raise PharmacyNotConfigured()
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout

    @classmethod
    def from_settings(cls) -> DispenseProClient:
        return cls(
            base_url=settings.DISPENSEPRO_API_URL,
            api_key=settings.DISPENSEPRO_API_KEY,
            timeout=settings.GATEWAY_TIMEOUT_SECONDS,
        )

    def submit_order(
        self,
        *,
        reference: str,
        patient: dict[str, Any],
        items: list[dict[str, Any]],
        prescriber: str,
    ) -> DispenseProOrder:
        body = {
            "reference": reference,
            "patient": patient,
            "items": items,
            "prescriber": prescriber,
        }
        return self._call("POST", "/orders", body, operation="submission")

    def get_order(self, *, order_id: str) -> DispenseProOrder:
        return self._call("GET", _order_path(order_id), None, operation="lookup")

    def void_order(self, *, order_id: str, reason: str) -> DispenseProOrder:
        path = f"{_order_path(order_id)}/void"
        return self._call("POST", path, {"reason": reason}, operation="void")

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None, *, operation: str
    ) -> DispenseProOrder:
        response = self._send(method, path, body, operation)
        logger.info("DispensePro %s %s -> %s", method, path, response.status_code)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.ok:
            return DispenseProOrder.from_json(answer)
        error = answer.get("error") if isinstance(answer, dict) else None
        error = error if isinstance(error, dict) else {}
        if error.get("code") == "already_shipped":
            raise AlreadyShipped()
        message = str(error.get("message") or f"HTTP {response.status_code}").strip()
        message = message[:MAX_MESSAGE].replace(self._api_key, "[redacted]")
        raise PharmacyError(
            message if message.endswith(".") else f"{message}.",
            provider_code=str(error.get("code") or ""),
            http_status=response.status_code,
        )

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None, operation: str
    ) -> requests.Response:
        try:
            return requests.request(
                method,
                f"{self.base_url}{path}",
                json=body,
                headers={"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"},
                timeout=self.timeout,
            )
        except requests.ConnectTimeout as failure:
            raise PharmacyUnreachable("the connection timed out") from failure
        except requests.Timeout as failure:
            raise PharmacyTimeout(
                what_happened=f"did not answer within {self.timeout:g} seconds",
                operation=operation,
            ) from failure
        except requests.ConnectionError as failure:
            reason = getattr(failure.args[0] if failure.args else None, "reason", None)
            if isinstance(reason, NewConnectionError):
                raise PharmacyUnreachable("the connection was refused") from failure
            raise PharmacyTimeout(
                what_happened="closed the connection without answering", operation=operation
            ) from failure


def _order_path(order_id: str) -> str:
    return f"/orders/{quote(order_id, safe='')}"
