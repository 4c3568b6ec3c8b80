"""A fake Beluga Health API server for development and tests.

    python -m integrations.fakes.beluga --port 8702 --api-key KEY \
        [--webhook-url http://localhost:8000/webhooks/beluga/ --webhook-secret SECRET]

(`--api-key` and `--webhook-secret` default to $BELUGA_API_KEY and $BELUGA_WEBHOOK_SECRET, so
neither need appear in `ps`.)

Beluga publishes no API reference. This fake serves the contract written in
`integrations/beluga/client.py` (requests) and `integrations/beluga/webhooks.py` (webhooks);
change the three together.

    Authorization: Bearer <key>; a wrong or missing key is HTTP 401 with an error envelope whose
        message quotes the key it was given (some APIs do; it proves our logs never keep it).
    Envelopes: {"status": "success", "data": visit} or {"status": "error", "error": "…"}.
    POST /visits                    create (201) or, for a masterId it has, answer it (200)
    GET  /visits/{masterId}         the visit, or 404
    POST /visits/{masterId}/cancel  {"reason"}: canceled + closed (200); idempotent; a resolved
                                    visit answers the error *in the body with HTTP 200*, as
                                    Beluga-style APIs do.

Test control API (JSON), for tests only:
    POST /_fake/faults    {"next": "error_in_body" | "http_error" | "html_error" | "hang" |
                           "drop", "on": "submit" | "get" | "cancel" | "any", "seconds": 1.0,
                           "message": "…", "status": 500}
                          queues a fault for the next request of that kind.
                          error_in_body: HTTP 200, error envelope, nothing applied;
                          http_error: HTTP `status` (500), error envelope, nothing applied;
                          html_error: HTTP 502 with an HTML page, nothing applied;
                          hang: apply, then wait `seconds` before answering;
                          drop: apply, then close the connection unanswered.
    GET  /_fake/visits                 every visit
    POST /_fake/visits/{id}/status     {"visitStatus", "resolvedStatus"}: Beluga's side moves
    POST /_fake/events                 {"event", "masterId", "data", "eventId"?}: build a signed
                                       webhook (and apply its effect to the fake's visit);
                                       answers {"event", "body", "headers", "delivered"}; sent
                                       to --webhook-url too when one was given
    GET  /_fake/requests               what clients sent: method, path, body (never headers)
    POST /_fake/reset                  forget visits, faults and requests
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

VISIT_STATUSES = {"pending", "active", "admin", "holding", "resolved", "canceled"}
FAULT_KINDS = {"error_in_body", "http_error", "html_error", "hang", "drop"}
REQUEST_KINDS = {"submit", "get", "cancel"}


@dataclass(frozen=True)
class Fault:
    kind: str
    on: str = "any"
    seconds: float = 0.0
    message: str = ""
    status: int = 500


class Answer(Exception):
    """Stop handling and answer with this HTTP status and envelope."""

    def __init__(self, status: int, envelope: dict[str, Any]):
        super().__init__(envelope)
        self.status = status
        self.envelope = envelope


def error(status: int, message: str) -> Answer:
    return Answer(status, {"status": "error", "error": message})


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class FakeBeluga:
    """Beluga's visits and rules; the HTTP handler below only translates."""

    def __init__(self, *, api_key: str, webhook_secret: str = "", webhook_url: str = ""):
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self._lock = threading.Lock()
        self._event_ids = itertools.count(1)
        self.visits: dict[str, dict[str, Any]] = {}
        self.faults: FaultQueue[Fault] = FaultQueue()
        self.requests = RequestLog()

    def authenticate(self, authorization: str) -> None:
        given = authorization.removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            raise error(401, f"Invalid API key {given!r}")

    # API

    def submit(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        master_id = body.get("masterId")
        if not isinstance(master_id, str) or not master_id:
            raise error(422, "masterId is required")
        if not isinstance(body.get("patient"), dict):
            raise error(422, "patient is required")
        with self._lock:
            if master_id in self.visits:
                return 200, self._public(self.visits[master_id])
            self.visits[master_id] = {
                "masterId": master_id,
                "visitStatus": "pending",
                "resolvedStatus": "open",
                "products": body.get("products") or [],
                "cancelReason": "",
                "createdAt": now_iso(),
            }
            return 201, self._public(self.visits[master_id])

    def get(self, master_id: str) -> dict[str, Any]:
        with self._lock:
            return self._public(self._visit(master_id))

    def cancel(self, master_id: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            visit = self._visit(master_id)
            if visit["visitStatus"] == "resolved":
                # Beluga-style: the refusal is in the body, the HTTP status says 200.
                raise error(200, "Visit is resolved and cannot be canceled")
            if visit["visitStatus"] != "canceled":
                visit.update(
                    visitStatus="canceled",
                    resolvedStatus="closed",
                    cancelReason=str(body.get("reason") or ""),
                )
            return self._public(visit)

    def _visit(self, master_id: str) -> dict[str, Any]:
        if master_id not in self.visits:
            raise error(404, f"No visit with masterId {master_id}")
        return self.visits[master_id]

    @staticmethod
    def _public(visit: dict[str, Any]) -> dict[str, Any]:
        return {key: visit[key] for key in ("masterId", "visitStatus", "resolvedStatus")}

    # Webhooks

    def build_event(self, spec: dict[str, Any]) -> dict[str, Any]:
        event_type, master_id = spec.get("event"), spec.get("masterId")
        if not isinstance(event_type, str) or not isinstance(master_id, str):
            raise error(400, "event and masterId are required")
        data = spec.get("data") or {}
        with self._lock:
            self._apply_event(event_type, master_id, data)
            event = {
                "eventId": spec.get("eventId") or f"evt_{next(self._event_ids):06d}",
                "event": event_type,
                "masterId": master_id,
                "occurredAt": now_iso(),
                "data": data,
            }
        body = json.dumps(event).encode()
        headers = self.signed_headers(body)
        return {
            "event": event,
            "body": body.decode(),
            "headers": headers,
            "delivered": deliver_webhook(self.webhook_url, body, headers),
        }

    def _apply_event(self, event_type: str, master_id: str, data: dict[str, Any]) -> None:
        visit = self.visits.get(master_id)
        if visit is None:
            return
        if event_type == "VISIT_CANCELED":
            visit.update(visitStatus="canceled", resolvedStatus="closed")
        elif event_type == "VISIT_CONCLUDED":
            visit.update(visitStatus="resolved", resolvedStatus="closed")
        elif event_type == "VISIT_STATUS_CHANGED" and data.get("visitStatus") in VISIT_STATUSES:
            visit["visitStatus"] = data["visitStatus"]
            visit["resolvedStatus"] = data.get("resolvedStatus") or visit["resolvedStatus"]

    def signed_headers(self, body: bytes) -> dict[str, str]:
        return signed_webhook_headers(
            secret=self.webhook_secret, header_prefix="X-Beluga", body=body
        )

    # Test control

    def set_status(self, master_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            visit = self._visit(master_id)
            if spec.get("visitStatus") not in VISIT_STATUSES:
                raise error(400, f"visitStatus must be one of {sorted(VISIT_STATUSES)}")
            visit["visitStatus"] = spec["visitStatus"]
            visit["resolvedStatus"] = spec.get("resolvedStatus") or visit["resolvedStatus"]
            return self._public(visit)

    def add_fault(self, spec: dict[str, Any]) -> Fault:
        fault = Fault(
            kind=spec.get("next", ""),
            on=spec.get("on", "any"),
            seconds=float(spec.get("seconds", 0)),
            message=str(spec.get("message", "")),
            status=int(spec.get("status", 500)),
        )
        if fault.kind not in FAULT_KINDS or fault.on not in REQUEST_KINDS | {"any"}:
            raise error(400, f"next in {sorted(FAULT_KINDS)}, on in {sorted(REQUEST_KINDS)}")
        return self.faults.add(fault)

    def reset(self) -> None:
        with self._lock:
            self.visits.clear()
        self.faults.clear()
        self.requests.clear()


class FakeBelugaHandler(JsonRequestHandler):
    server: FakeBelugaHTTPServer

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        beluga = self.server.beluga
        if path == "/_fake/visits":
            self._send_json(200, list(beluga.visits.values()))
        elif path == "/_fake/requests":
            self._send_json(200, beluga.requests.entries())
        elif path.startswith("/visits/"):
            self._serve_api("get", lambda body: (200, beluga.get(_id(path, "/visits/"))))
        else:
            self._send_json(404, {"status": "error", "error": "Not found"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        beluga = self.server.beluga
        if path == "/visits":
            self._serve_api("submit", beluga.submit)
        elif path.startswith("/visits/") and path.endswith("/cancel"):
            master_id = _id(path.removesuffix("/cancel"), "/visits/")
            self._serve_api("cancel", lambda body: (200, beluga.cancel(master_id, body)))
        elif path.startswith("/_fake/"):
            self._serve_control(path)
        else:
            self._send_json(404, {"status": "error", "error": "Not found"})

    def _serve_api(self, kind: str, handle) -> None:
        body = self._read_json()
        self.server.beluga.requests.record(self.command, urlsplit(self.path).path, body)
        fault = self.server.beluga.faults.take(kind)
        try:
            self.server.beluga.authenticate(self.headers.get("Authorization", ""))
            if fault and fault.kind == "error_in_body":
                raise error(200, fault.message or "Internal processing error, visit not updated")
            if fault and fault.kind == "http_error":
                raise error(fault.status, fault.message or "Service unavailable")
            if fault and fault.kind == "html_error":
                self._send(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
                return
            status, visit = handle(body if isinstance(body, dict) else {})
        except Answer as answer:
            self._send_json(answer.status, answer.envelope)
            return
        if fault and fault.kind == "drop":
            self.close_connection = True  # applied; the answer is lost
            return
        if fault and fault.kind == "hang":
            time.sleep(fault.seconds)
        self._send_json(status, {"status": "success", "data": visit})

    def _serve_control(self, path: str) -> None:
        beluga = self.server.beluga
        body = self._read_json()
        body = body if isinstance(body, dict) else {}
        try:
            if path == "/_fake/reset":
                beluga.reset()
                self._send_json(200, {"reset": True})
            elif path == "/_fake/faults":
                fault = beluga.add_fault(body)
                self._send_json(200, {"queued": fault.kind, "on": fault.on})
            elif path == "/_fake/events":
                self._send_json(200, beluga.build_event(body))
            elif path.startswith("/_fake/visits/") and path.endswith("/status"):
                master_id = _id(path.removesuffix("/status"), "/_fake/visits/")
                self._send_json(200, beluga.set_status(master_id, body))
            else:
                self._send_json(404, {"error": "no such control"})
        except Answer as answer:
            self._send_json(answer.status, answer.envelope)


def _id(path: str, prefix: str) -> str:
    return unquote(path.removeprefix(prefix))


class FakeBelugaHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], beluga: FakeBeluga):
        super().__init__(address, FakeBelugaHandler)
        self.beluga = beluga


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Beluga Health API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8702)
    parser.add_argument("--api-key", default=os.environ.get("BELUGA_API_KEY"))
    parser.add_argument("--webhook-url", default="")
    parser.add_argument("--webhook-secret", default=os.environ.get("BELUGA_WEBHOOK_SECRET", ""))
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("give --api-key or set BELUGA_API_KEY")
    if args.webhook_url and not args.webhook_secret:
        parser.error("--webhook-url needs --webhook-secret (or $BELUGA_WEBHOOK_SECRET)")

    beluga = FakeBeluga(
        api_key=args.api_key, webhook_secret=args.webhook_secret, webhook_url=args.webhook_url
    )
    server = FakeBelugaHTTPServer((args.host, args.port), beluga)
    serve(server, name="Beluga", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
