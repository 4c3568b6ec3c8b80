"""SMS delivery behind a pluggable backend, like Django's email backends.

`WORKFLOW_SMS_BACKEND` names the class: the logging backend in dev (nothing leaves the machine),
the locmem backend in tests (messages land in `sms.outbox`), a provider's adapter in production.
The contract is one method: `send(to=, body=, idempotency_key=) -> provider message id`, raising
`SmsDeliveryError` when the provider refused or could not be reached (the step retries).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

DEFAULT_BACKEND = "emr.workflows.sms.LoggingSmsBackend"


class SmsDeliveryError(Exception):
    pass


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str
    idempotency_key: str


class SmsBackend:
    def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        raise NotImplementedError


class LoggingSmsBackend(SmsBackend):
    """Dev: log that a message would go out, without its text (it may name the patient)."""

    def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        logger.info("SMS to %s (%d characters), key %s", to, len(body), idempotency_key)
        return f"logged-{idempotency_key}"


# Tests read what was "sent" here, as they read django.core.mail.outbox.
outbox: list[SmsMessage] = []


class LocmemSmsBackend(SmsBackend):
    def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        outbox.append(SmsMessage(to=to, body=body, idempotency_key=idempotency_key))
        return f"locmem-{len(outbox)}"


def get_backend() -> SmsBackend:
    return import_string(getattr(settings, "WORKFLOW_SMS_BACKEND", DEFAULT_BACKEND))()
