"""A fake DispensePro pharmacy API server for development and tests.

    python -m integrations.fakes.dispensepro --port 8703 --api-key KEY \
        [--webhook-url http://localhost:8000/webhooks/dispensepro/ --webhook-secret SECRET]

(`--api-key` and `--webhook-secret` default to $DISPENSEPRO_API_KEY and
$DISPENSEPRO_WEBHOOK_SECRET.)

DispensePro publishes no API reference. This fake serves the contract written in
`integrations/pharmacy/dispensepro.py` (requests) and `integrations/pharmacy/webhooks.py`
(webhooks); change the three together.

    Authorization: Bearer <key>; otherwise 401 {"error": {"code": "unauthorized", …}}.
    POST /orders             {"reference", "patient", "items", "prescriber"}: 201 a new order
                             ("received"), or 200 the order it already has for that reference
    GET  /orders/{id}        the order, or 404
    POST /orders/{id}/void   {"reason"}: "voided" (200); idempotent; once shipped, 409
                             {"error": {"code": "already_shipped", …}}

Test control API (JSON), for tests only:
    POST /_fake/faults              {"next": "http_error" | "hang" | "drop",
                                     "on": "submit" | "get" | "void" | "any", "seconds": 1.0}
                                    http_error: 500 `internal`, nothing applied; hang: apply,
                                    then wait; drop: apply, then close the connection unanswered
    POST /_fake/orders/{id}/ship    {"carrier", "trackingNumber"}: the pharmacy ships; answers
                                    the signed `order.shipped` webhook (see below)
    POST /_fake/orders/{id}/events  {"type"}: a signed webhook about the order as it is now
        both answer {"event", "body", "headers", "delivered"}, and deliver it to --webhook-url
        when one was given
    GET  /_fake/orders              every order
    GET  /_fake/requests            what clients sent: method, path, body (never headers)
    POST /_fake/reset               forget orders, faults and requests
"""

from __future__ import annotations

import argparse
import hmac
import itertools
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from integrations.fakes.common import (
    FaultQueue,
    JsonRequestHandler,
    RequestLog,
    deliver_webhook,
    serve,
    signed_webhook_headers,
)

FAULT_KINDS = {"http_error", "hang", "drop"}
REQUEST_KINDS = {"submit", "get", "void"}


@dataclass(frozen=True)
class Fault:
    kind: str
    on: str = "any"
    seconds: float = 0.0


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"code": code, "message": message}}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class FakeDispensePro:
    """DispensePro's orders and rules; the HTTP handler below only translates."""

    def __init__(self, *, api_key: str, webhook_secret: str = "", webhook_url: str = ""):
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self._lock = threading.Lock()
        # Ids keep counting across resets, so an id a test kept never names a newer order.
        self._order_ids = itertools.count(1001)
        self._event_ids = itertools.count(1)
        self.orders: dict[str, dict[str, Any]] = {}
        self.faults: FaultQueue[Fault] = FaultQueue()
        self.requests = RequestLog()

    def authenticate(self, authorization: str) -> None:
        given = authorization.removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            raise Refusal(401, "unauthorized", "Invalid API key")

    # API

    def submit(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        reference = body.get("reference")
        if not isinstance(reference, str) or not reference:
            raise Refusal(422, "invalid", "reference is required")
        if not isinstance(body.get("items"), list) or not body["items"]:
            raise Refusal(422, "invalid", "items are required")
        with self._lock:
            for order in self.orders.values():
                if order["reference"] == reference:
                    return 200, dict(order)
            order_id = f"dp_ord_{next(self._order_ids)}"
            self.orders[order_id] = {
                "id": order_id,
                "reference": reference,
                "status": "received",
                "shippedAt": None,
                "carrier": None,
                "trackingNumber": None,
            }
            return 201, dict(self.orders[order_id])

    def get(self, order_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._order(order_id))

    def void(self, order_id: str) -> dict[str, Any]:
        with self._lock:
            order = self._order(order_id)
            if order["status"] == "shipped":
                raise Refusal(409, "already_shipped", "Order has already shipped")
            order["status"] = "voided"
            return dict(order)

    def _order(self, order_id: str) -> dict[str, Any]:
        if order_id not in self.orders:
            raise Refusal(404, "not_found", f"No order {order_id}")
        return self.orders[order_id]

    # Test control and webhooks

    def ship(self, order_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            order = self._order(order_id)
            if order["status"] == "voided":
                raise Refusal(409, "voided", "A voided order does not ship")
            order.update(
                status="shipped",
                shippedAt=now_iso(),
                carrier=spec.get("carrier") or "UPS",
                trackingNumber=spec.get("trackingNumber") or f"1Z{order_id[-4:]}0000",
            )
        return self.event(order_id, {"type": "order.shipped"})

    def event(self, order_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            event = {
                "id": spec.get("id") or f"evt_dp_{next(self._event_ids):06d}",
                "type": spec.get("type") or "order.updated",
                "created": now_iso(),
                "data": {"order": dict(self._order(order_id))},
            }
        body = json.dumps(event).encode()
        headers = self.signed_headers(body)
        return {
            "event": event,
            "body": body.decode(),
            "headers": headers,
            "delivered": deliver_webhook(self.webhook_url, body, headers),
        }

    def signed_headers(self, body: bytes) -> dict[str, str]:
        return signed_webhook_headers(
            secret=self.webhook_secret, header_prefix="X-DispensePro", body=body
        )

    def add_fault(self, spec: dict[str, Any]) -> Fault:
        fault = Fault(
            kind=spec.get("next", ""),
            on=spec.get("on", "any"),
            seconds=float(spec.get("seconds", 0)),
        )
        if fault.kind not in FAULT_KINDS or fault.on not in REQUEST_KINDS | {"any"}:
            raise Refusal(400, "invalid", f"next in {sorted(FAULT_KINDS)}, on in {REQUEST_KINDS}")
        return self.faults.add(fault)

    def reset(self) -> None:
        with self._lock:
            self.orders.clear()
        self.faults.clear()
        self.requests.clear()


class FakeDispenseProHandler(JsonRequestHandler):
    server: FakeDispenseProHTTPServer

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        pharmacy = self.server.pharmacy
        if path == "/_fake/orders":
            self._send_json(200, list(pharmacy.orders.values()))
        elif path == "/_fake/requests":
            self._send_json(200, pharmacy.requests.entries())
        elif path.startswith("/orders/"):
            order_id = unquote(path.removeprefix("/orders/"))
            self._serve_api("get", lambda body: (200, pharmacy.get(order_id)))
        else:
            self._send_json(404, {"error": {"code": "not_found", "message": "Not found"}})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        pharmacy = self.server.pharmacy
        if path == "/orders":
            self._serve_api("submit", pharmacy.submit)
        elif path.startswith("/orders/") and path.endswith("/void"):
            order_id = unquote(path.removeprefix("/orders/").removesuffix("/void"))
            self._serve_api("void", lambda body: (200, pharmacy.void(order_id)))
        elif path.startswith("/_fake/"):
            self._serve_control(path)
        else:
            self._send_json(404, {"error": {"code": "not_found", "message": "Not found"}})

    def _serve_api(self, kind: str, handle) -> None:
        body = self._read_json()
        self.server.pharmacy.requests.record(self.command, urlsplit(self.path).path, body)
        fault = self.server.pharmacy.faults.take(kind)
        try:
            self.server.pharmacy.authenticate(self.headers.get("Authorization", ""))
            if fault and fault.kind == "http_error":
                raise Refusal(500, "internal", "Internal error, please retry")
            status, order = handle(body if isinstance(body, dict) else {})
        except Refusal as refusal:
            self._send_json(refusal.status, refusal.body)
            return
        if fault and fault.kind == "drop":
            self.close_connection = True  # applied; the answer is lost
            return
        if fault and fault.kind == "hang":
            time.sleep(fault.seconds)
        self._send_json(status, order)

    def _serve_control(self, path: str) -> None:
        pharmacy = self.server.pharmacy
        body = self._read_json()
        body = body if isinstance(body, dict) else {}
        try:
            if path == "/_fake/reset":
                pharmacy.reset()
                self._send_json(200, {"reset": True})
            elif path == "/_fake/faults":
                fault = pharmacy.add_fault(body)
                self._send_json(200, {"queued": fault.kind, "on": fault.on})
            elif path.startswith("/_fake/orders/") and path.endswith("/ship"):
                order_id = unquote(path.removeprefix("/_fake/orders/").removesuffix("/ship"))
                self._send_json(200, pharmacy.ship(order_id, body))
            elif path.startswith("/_fake/orders/") and path.endswith("/events"):
                order_id = unquote(path.removeprefix("/_fake/orders/").removesuffix("/events"))
                self._send_json(200, pharmacy.event(order_id, body))
            else:
                self._send_json(404, {"error": {"code": "not_found", "message": "no control"}})
        except Refusal as refusal:
            self._send_json(refusal.status, refusal.body)


class FakeDispenseProHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], pharmacy: FakeDispensePro):
        super().__init__(address, FakeDispenseProHandler)
        self.pharmacy = pharmacy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake DispensePro pharmacy API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8703)
    parser.add_argument("--api-key", default=os.environ.get("DISPENSEPRO_API_KEY"))
    parser.add_argument("--webhook-url", default="")
    parser.add_argument(
        "--webhook-secret", default=os.environ.get("DISPENSEPRO_WEBHOOK_SECRET", "")
    )
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("give --api-key or set DISPENSEPRO_API_KEY")
    if args.webhook_url and not args.webhook_secret:
        parser.error("--webhook-url needs --webhook-secret (or $DISPENSEPRO_WEBHOOK_SECRET)")

    pharmacy = FakeDispensePro(
        api_key=args.api_key, webhook_secret=args.webhook_secret, webhook_url=args.webhook_url
    )
    server = FakeDispenseProHTTPServer((args.host, args.port), pharmacy)
    serve(server, name="DispensePro", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
