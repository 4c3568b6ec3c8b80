"""Plumbing the local fake servers share: JSON over HTTP, signed webhook delivery, a queue of
injected faults, random faults for a soak, a log of the requests received, and the serve loop.

Each fake keeps its own protocol, rules and error shapes; nothing here knows about them. The
webhook signer is deliberately the fakes' own (not integrations.signing): a fake that borrowed the
app's signer could not catch a mistake in it.
"""

import hashlib
import hmac
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit


class _Targeted(Protocol):
    on: str  # the request kind a fault is for, or "any"


FaultT = TypeVar("FaultT", bound=_Targeted)


class FaultQueue(Generic[FaultT]):
    """Faults a test queued; each is used once, by the first request of its kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[FaultT] = []

    def add(self, fault: FaultT) -> FaultT:
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, kind: str) -> FaultT | None:
        with self._lock:
            for fault in self._faults:
                if fault.on in ("any", kind):
                    self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


class FaultDice:
    """Random faults for a soak (`POST /_fake/chaos`), off until configured.

    Each request of a targeted kind draws from a seeded generator: "drop" (the request is
    applied, then the connection closes unanswered), "slow" (applied, answered after
    `slow_seconds`: beyond the client's timeout) or "refuse" (the gateway's own "try again"
    answer, nothing applied). Each fake maps these onto its protocol. What was injected is
    counted by fault and request kind (`GET /_fake/chaos`).
    """

    FAULTS = ("drop", "slow", "refuse")

    def __init__(self, kinds: set[str]) -> None:
        self._kinds = kinds
        self._lock = threading.Lock()
        self.configure({})

    def configure(self, spec: Any) -> dict[str, Any]:
        """`{"seed", "drop", "slow", "refuse" (probabilities), "slow_seconds", "on": [kinds]}`;
        `{}` turns the faults off. Raises ValueError for a spec that is not one."""
        if not isinstance(spec, dict):
            raise ValueError("expected a JSON object")
        rates = {fault: float(spec.get(fault, 0)) for fault in self.FAULTS}
        on = set(spec.get("on", sorted(self._kinds)))
        if not all(0 <= rate <= 1 for rate in rates.values()) or sum(rates.values()) > 1:
            raise ValueError("each of drop, slow, refuse is a probability; together at most 1")
        if not on <= self._kinds:
            raise ValueError(f"on: request kinds among {sorted(self._kinds)}")
        with self._lock:
            self._rng = random.Random(spec.get("seed", 0))
            self._rates, self._on = rates, on
            self.slow_seconds = float(spec.get("slow_seconds", 5))
            self._injected: Counter[tuple[str, str]] = Counter()
        return self.status()

    def draw(self, kind: str) -> str | None:
        with self._lock:
            if kind not in self._on or not any(self._rates.values()):
                return None
            roll = self._rng.random()
            for fault in self.FAULTS:
                if roll < self._rates[fault]:
                    self._injected[fault, kind] += 1
                    return fault
                roll -= self._rates[fault]
        return None

    def status(self) -> dict[str, Any]:
        with self._lock:
            injected: dict[str, dict[str, int]] = {}
            for (fault, kind), count in sorted(self._injected.items()):
                injected.setdefault(fault, {})[kind] = count
            return {
                "rates": dict(self._rates),
                "on": sorted(self._on),
                "slow_seconds": self.slow_seconds,
                "injected": injected,
            }


class RequestLog:
    """Every API request a fake received, for tests to read back (GET /_fake/requests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def record(self, method: str, path: str, body: Any) -> None:
        with self._lock:
            self._entries.append({"method": method, "path": path, "body": body})

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def signed_webhook_headers(*, secret: str, header_prefix: str, body: bytes) -> dict[str, str]:
    """`<prefix>-Timestamp` and `<prefix>-Signature: sha256=HMAC(secret, "<ts>." + body)`."""
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        f"{header_prefix}-Timestamp": timestamp,
        f"{header_prefix}-Signature": f"sha256={digest.hexdigest()}",
    }


def deliver_webhook(url: str, body: bytes, headers: dict[str, str]) -> int | str | None:
    """POST to `url`: the receiver's HTTP status, a sentence if unreachable, None if no URL."""
    if not url:
        return None
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 (our URL)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code
    except OSError as failure:
        return f"not delivered: {failure}"


class JsonRequestHandler(BaseHTTPRequestHandler):
    max_body_bytes = 1_000_000

    def _read_json(self) -> Any:
        length = min(int(self.headers.get("Content-Length") or 0), self.max_body_bytes)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def _send_json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a "hang" fault does that on purpose)

    def log_request(self, code="-", size="-") -> None:
        self.log_message("%s %s %s", self.command, urlsplit(self.path).path, code)


def serve(server: ThreadingHTTPServer, *, name: str, host: str, port: int) -> None:
    """Serve until interrupted; the first line printed tells the starter it is up."""
    print(f"Fake {name} listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
