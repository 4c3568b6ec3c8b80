"""The id that follows one piece of work: from the request (or the beat tick) through every
task it queues and every gateway call they make, so one refund reads as one story in the logs.

It lives in a contextvar: the request middleware binds it for a request, the Celery signals in
`task_logging.py` carry it in a message header and bind it for the task that message runs.
"""

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from emr.kernel.card_numbers import scrub_card_numbers

HEADER = "X-Request-ID"

_current: ContextVar[str] = ContextVar("request_id", default="")
# What a proxy or a client may hand us: UUIDs and the like. Anything else (too long, spaces,
# quotes, an email) could forge log lines or carry PHI into them, and is replaced.
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{7,63}")


def current() -> str:
    return _current.get()


def new() -> str:
    return uuid.uuid4().hex


def accept(candidate: str | None) -> str:
    """`candidate` when it is a well-formed id (and no card number), else a new id."""
    if (
        candidate
        and _WELL_FORMED.fullmatch(candidate)
        and scrub_card_numbers(candidate) == candidate
    ):
        return candidate
    return new()


def enter(request_id: str) -> Token:
    """Bind `request_id` until `leave(token)`: for work whose start and end are two callbacks."""
    return _current.set(request_id)


def leave(token: Token) -> None:
    _current.reset(token)


@contextmanager
def bound(request_id: str) -> Iterator[str]:
    token = enter(request_id)
    try:
        yield request_id
    finally:
        leave(token)
