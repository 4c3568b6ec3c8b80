"""What a Beluga log row may keep of a request or an answer.

The "EMR -> Beluga Logs" view is for support staff chasing a failed call: they need the
operation, the visit, the statuses and Beluga's error, not the patient's identity or answers,
and never a credential. So, before a body is stored:
- credentials (keys named like a key, token, secret, password or authorization) are replaced;
- PHI (names, date of birth, contact details, address, free-text answers and messages) is
  replaced;
- and, whatever the key, any string containing one of the live secrets (the API key) has that
  secret cut out, in case Beluga echoes it back in an error message.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from integrations.http import REDACTED

_CREDENTIAL_WORDS = ("key", "token", "secret", "password", "authorization", "signature")

# Normalised (lower case, no "_" or "-"): firstName, first_name and FIRST-NAME are one key.
_PHI_KEYS = frozenset(
    {
        # identity
        "name",
        "firstname",
        "lastname",
        "middlename",
        "fullname",
        "patientname",
        "dob",
        "dateofbirth",
        "birthdate",
        "ssn",
        # contact
        "email",
        "phone",
        "phonenumber",
        "mobile",
        # address
        "address",
        "address1",
        "address2",
        "street",
        "city",
        "zip",
        "zipcode",
        "postalcode",
        # free text written by or about the patient
        "answers",
        "answer",
        "formobj",
        "notes",
        "note",
        "body",
        "message",
        "comment",
        "comments",
    }
)


def _normalised(key: object) -> str:
    return str(key).replace("_", "").replace("-", "").lower()


def _is_sensitive(key: object) -> bool:
    normalised = _normalised(key)
    return normalised in _PHI_KEYS or any(word in normalised for word in _CREDENTIAL_WORDS)


def redact(value: Any, *, secrets: Iterable[str] = ()) -> Any:
    """A copy of `value` (JSON-like) safe to store in a log row."""
    live_secrets = [secret for secret in secrets if secret]
    return _redact(value, live_secrets)


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if _is_sensitive(key) else _redact(item, secrets)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(item, secrets) for item in value]
    if isinstance(value, str):
        return scrub(value, secrets=secrets)
    return value


def scrub(text: str, *, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text
