"""Who is acting, through which door, and why. Every service that changes money, status or
consent takes an `actor`; the stamp in force (`acting(...)`) lets every history row written
inside it say who did it, from where and why, however many models the service saves."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


class Door(enum.StrEnum):
    ADMIN = "admin"
    API = "api"
    PORTAL = "portal"
    TASK = "task"
    COMMAND = "command"
    WEBHOOK = "webhook"
    SHELL = "shell"


@dataclass(frozen=True)
class Actor:
    label: str  # what a billing admin reads in the timeline: a username or "system:<job>"
    door: Door
    user: Any = None  # the auth user, when a person acted

    @classmethod
    def staff(cls, user: Any, *, door: Door) -> Actor:
        return cls(label=user.get_username(), door=door, user=user)

    @classmethod
    def patient(cls, user: Any) -> Actor:
        return cls(label=f"patient:{user.get_username()}", door=Door.PORTAL, user=user)

    @classmethod
    def system(cls, job: str, *, door: Door = Door.TASK) -> Actor:
        return cls(label=f"system:{job}", door=door)


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
