"""A local HTTP receiver for webhook steps: records every request, answers a scripted sequence of
statuses, can hold a request until released, and deduplicates effects on `Idempotency-Key` the
way a well-behaved receiver does."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from emr.workflows import signing


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    secret: str = ""
    statuses: list[int] = field(default_factory=list)  # answered in turn; then 200
    hold: bool = False  # block each request until `release()`
    requests: list[Received] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)  # idempotency keys whose effect it applied

    def __post_init__(self):
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.holding = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver._handle(dict(self.headers.items()), body)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"ok" if status < 300 else b"try later")
                except OSError:
                    pass  # the sender died while we held its request

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handle(self, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            self.requests.append(Received(headers=headers, body=body))
            status = self.statuses.pop(0) if self.statuses else 200
        if self.hold:
            self.holding.set()
            self._released.wait(timeout=60)
        key = headers.get(signing.IDEMPOTENCY_HEADER, "")
        with self._lock:
            if status < 300 and key not in self.applied:  # a redelivery changes nothing
                self.applied.append(key)
        return status

    def release(self) -> None:
        self.hold = False
        self._released.set()

    def signature_valid(self, received: Received) -> bool:
        return signing.verify(
            secret=self.secret,
            timestamp=received.headers.get(signing.TIMESTAMP_HEADER, ""),
            body=received.body,
            signature=received.headers.get(signing.SIGNATURE_HEADER, ""),
        )

    def close(self) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()
