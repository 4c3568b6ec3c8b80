"""Log lines as JSON, one object a line, with the request id; scrubbed of PHI, tokens and
card numbers whichever logger wrote them (ours, Django's, Celery's, a library's).

`LOG_FORMAT=json` (the default with `DEBUG` off) selects `JsonFormatter`; the plain format
keeps the same scrubbing. A line's structured fields come from `extra={"fields": {...}}`.

The scrubber cannot recognise a patient's name in free text, so names are kept out by what is
logged (ids and numbers, never a patient's record); emails, phone numbers, bearer and API
tokens, gateway card tokens, secret keys and Luhn-valid digit runs are cut from every line.
"""

import json
import logging
import re
from datetime import UTC, datetime

from emr.kernel import request_id
from emr.kernel.card_numbers import scrub_card_numbers

REMOVED = "[removed]"

_PATTERNS = [
    # Emails.
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    # Credentials in headers: "Bearer …", "Token …", "Basic …".
    re.compile(r"(?i)(?<=bearer )\S+|(?<=token )\S+|(?<=basic )\S+"),
    # Stripe secret and restricted keys, webhook secrets, card tokens and saved cards.
    re.compile(r"\b(?:sk|rk|whsec|pm|tok|src|card|seti)_[A-Za-z0-9_]{6,}"),
    # DRF API tokens (40 hex digits).
    re.compile(r"\b[0-9a-f]{40}\b"),
    # Phone numbers: North American and international forms, not dates or amounts.
    re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}(?!\w)"),
    re.compile(r"(?<![\w+])\+\d[\d ().-]{6,}\d(?!\w)"),
]


def scrub(text: str) -> str:
    text = scrub_card_numbers(text)
    for pattern in _PATTERNS:
        text = pattern.sub(REMOVED, text)
    return text


class ScrubFilter(logging.Filter):
    """On a handler: the record's message, fields and traceback are scrubbed before any
    formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {
                key: scrub(value) if isinstance(value, str) else value
                for key, value in fields.items()
            }
        if record.exc_info and not record.exc_text:
            # Formatters print exc_text as it is when it is set: the scrubbed traceback.
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.current()
        if current:
            line["request_id"] = current
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str)


class PlainFormatter(logging.Formatter):
    """The readable format, with the request id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        current = request_id.current()
        return f"{text} [request_id={current}]" if current else text
