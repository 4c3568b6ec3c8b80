"""The JSON-over-HTTP client the partner integrations are built on (Beluga, DispensePro).

One place for what every partner call shares: the bearer key, the timeout from settings
(`GATEWAY_TIMEOUT_SECONDS`), what "no answer" means (refused connection: unreachable, nothing
was received; no answer in time or a dropped connection: unknown, the partner may have applied
it), the partner's message made into a sentence with the key cut out, and every request and
its answer handed to an optional `on_exchange` hook (Beluga writes it, redacted, to its log).
Headers are never part of an exchange, so the key cannot reach a log that way.

A client subclass names its partner, its settings and its errors, and says in `interpret()`
what an answer means. It knows no Django models.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from urllib3.exceptions import NewConnectionError

from emr.kernel.errors import IntegrationFailed

logger = logging.getLogger(__name__)

MAX_LOGGED_TEXT = 2000  # a non-JSON answer (an HTML error page) is kept this long
MAX_MESSAGE = 300
REDACTED = "[redacted]"


class PartnerNotConfigured(IntegrationFailed):
    """The partner's URL or key is not set: the integration is off."""

    partner = "The partner"

    def __init__(self, *settings_names: str):
        super().__init__(
            f"The {self.partner} integration is not configured ({' and '.join(settings_names)}). "
            f"Nothing was sent to {self.partner} and nothing was changed."
        )


class PartnerUnreachable(IntegrationFailed):
    """No answer at all: the connection failed before the partner could receive the request."""

    partner = "The partner"

    def __init__(self, reason: str):
        super().__init__(f"Could not reach {self.partner} ({reason}). Try again later.")


class PartnerTimeout(IntegrationFailed):
    """No answer in time: the partner may or may not have applied the request."""

    partner = "The partner"
    retry_note = ""  # why trying again is safe

    def __init__(self, *, what_happened: str, operation: str):
        self.operation = operation
        super().__init__(
            f"{self.partner} {what_happened}, so we cannot tell whether the {operation} reached "
            f"it. {self.retry_note}"
        )


@dataclass(frozen=True)
class Exchange:
    """One request to a partner and what came back (or did not)."""

    operation: str  # submit_visit, cancel_visit, void, …
    method: str
    path: str
    subject: str  # the partner's name of what the request is about (Beluga's masterId)
    request_body: dict[str, Any] | None
    http_status: int | None  # None: no answer arrived
    response_body: Any  # the parsed JSON, or the answer's text when it was not JSON
    error: str  # "" when the partner answered with success
    duration_ms: int


ExchangeRecorder = Callable[[Exchange], None]


class JsonApiClient:
    partner: str
    url_setting: str
    key_setting: str
    not_configured: type[PartnerNotConfigured]
    unreachable: type[PartnerUnreachable]
    timed_out: type[PartnerTimeout]

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float,
        on_exchange: ExchangeRecorder | None = None,
    ):
        if not base_url or not api_key:
            raise self.not_configured(self.url_setting, self.key_setting)
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.on_exchange = on_exchange

    @classmethod
    def from_settings(cls, *, on_exchange: ExchangeRecorder | None = None):
        return cls(
            base_url=getattr(settings, cls.url_setting),
            api_key=getattr(settings, cls.key_setting),
            timeout=settings.GATEWAY_TIMEOUT_SECONDS,
            on_exchange=on_exchange,
        )

    def interpret(self, answer: Any, response: requests.Response) -> Any:
        """What the partner's answer (parsed JSON, or text) means: the data, or its error
        raised."""
        raise NotImplementedError

    def request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        subject: str = "",
        body: dict[str, Any] | None = None,
    ) -> Any:
        """Send one request and return what `interpret` makes of the answer; the exchange goes
        to `on_exchange` whatever happened."""
        started = time.monotonic()
        response: requests.Response | None = None
        answer: Any = None
        error = ""
        try:
            response = self._send(method, path, body, operation.replace("_", " "))
            answer = _parse(response)
            return self.interpret(answer, response)
        except IntegrationFailed as failure:
            error = failure.detail
            raise
        finally:
            http_status = response.status_code if response is not None else None
            logger.info("%s %s %s -> %s", self.partner, method, path, http_status)
            if self.on_exchange is not None:
                self.on_exchange(
                    Exchange(
                        operation=operation,
                        method=method,
                        path=path,
                        subject=subject,
                        request_body=body,
                        http_status=http_status,
                        response_body=answer,
                        error=error,
                        duration_ms=round((time.monotonic() - started) * 1000),
                    )
                )

    def sentence(self, message: Any) -> str:
        """The partner's own message, short, as a sentence, without our key in it (a partner
        may echo a wrong key back)."""
        text = str(message).strip()[:MAX_MESSAGE].replace(self._api_key, REDACTED)
        return text if text.endswith((".", "!", "?")) else f"{text}."

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
            raise self.unreachable("the connection timed out") from failure
        except requests.Timeout as failure:
            raise self.timed_out(
                what_happened=f"did not answer within {self.timeout:g} seconds",
                operation=operation,
            ) from failure
        except requests.ConnectionError as failure:
            if _never_connected(failure):
                raise self.unreachable("the connection was refused") from failure
            # The request went out and the connection closed before an answer came back.
            raise self.timed_out(
                what_happened="closed the connection without answering", operation=operation
            ) from failure


def _parse(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:MAX_LOGGED_TEXT]


def _never_connected(failure: requests.ConnectionError) -> bool:
    reason = getattr(failure.args[0] if failure.args else None, "reason", None)
    return isinstance(reason, NewConnectionError)
