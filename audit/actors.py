"""Who is acting, and through which door. Every service that changes money, status or consent
takes an `actor`, so the history row can say who did it and from where."""

from __future__ import annotations

import enum
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
