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
The request, the timeout and the transport failures are the shared JSON client's
(integrations/http.py); this module says what DispensePro's answers mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from integrations.http import JsonApiClient
from integrations.pharmacy.errors import (
    AlreadyShipped,
    PharmacyError,
    PharmacyNotConfigured,
    PharmacyTimeout,
    PharmacyUnreachable,
)

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


class DispenseProClient(JsonApiClient):
    partner = "DispensePro"
    url_setting, key_setting = "DISPENSEPRO_API_URL", "DISPENSEPRO_API_KEY"
    not_configured = PharmacyNotConfigured
    unreachable = PharmacyUnreachable
    timed_out = PharmacyTimeout

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
        return self.request("submission", "POST", "/orders", body=body)

    def get_order(self, *, order_id: str) -> DispenseProOrder:
        return self.request("lookup", "GET", _order_path(order_id))

    def void_order(self, *, order_id: str, reason: str) -> DispenseProOrder:
        return self.request(
            "void", "POST", f"{_order_path(order_id)}/void", body={"reason": reason}
        )

    def interpret(self, answer: Any, response: requests.Response) -> DispenseProOrder:
        if response.ok:
            return DispenseProOrder.from_json(answer)
        error = answer.get("error") if isinstance(answer, dict) else None
        error = error if isinstance(error, dict) else {}
        if error.get("code") == "already_shipped":
            raise AlreadyShipped()
        raise PharmacyError(
            self.sentence(error.get("message") or f"HTTP {response.status_code}"),
            provider_code=str(error.get("code") or ""),
            http_status=response.status_code,
        )


def _order_path(order_id: str) -> str:
    return f"/orders/{quote(order_id, safe='')}"
