"""The audit stamp in force: every history row written inside `acting(...)` carries its actor,
door and reason, however many models the service saves."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from audit.actors import Actor


@dataclass(frozen=True)
class AuditStamp:
    actor: Actor
    reason: str


_current_stamp: ContextVar[AuditStamp | None] = ContextVar("audit_stamp", default=None)


@contextmanager
def acting(actor: Actor, *, reason: str) -> Iterator[AuditStamp]:
    stamp = AuditStamp(actor=actor, reason=reason)
    token = _current_stamp.set(stamp)
    try:
        yield stamp
    finally:
        _current_stamp.reset(token)


def current_stamp() -> AuditStamp | None:
    return _current_stamp.get()
