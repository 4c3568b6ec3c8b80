"""Transition tables as data, the one check every status change goes through, and the save()
guard that applies it to a model whatever calls save()."""

from collections.abc import Callable, Iterable, Mapping
from typing import ClassVar

from django.db import models

from emr.kernel.errors import InvalidTransition


class TransitionTable:
    """`allowed[current]` is the set of statuses `current` may move to.

    `refuse(current, target)` builds the error for a move the table forbids, so each app keeps
    its own codes and sentences (`order.locked` reads differently from `order.invalid_transition`).
    """

    def __init__(
        self,
        allowed: Mapping[str, Iterable[str]],
        *,
        refuse: Callable[[str, str], InvalidTransition],
    ):
        self.allowed = {current: frozenset(targets) for current, targets in allowed.items()}
        self._refuse = refuse

    def can(self, current: str, target: str) -> bool:
        return target in self.allowed.get(current, frozenset())

    def check(self, current: str, target: str) -> None:
        if not self.can(current, target):
            raise self._refuse(current, target)

    def targets(self, current: str) -> frozenset[str]:
        return self.allowed.get(current, frozenset())


class GuardedStatusModel(models.Model):
    """A model whose `status` can only move along its transition table, whoever calls save().

    The service checks the move under a row lock first; this guard is the second wall, so an admin
    edit, a shell script or a bug cannot walk a REFUNDED order or a CANCELLED subscription back.
    """

    transitions: ClassVar[TransitionTable]

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        stored = getattr(self, "_stored_status", None)
        if self.pk is not None and stored is not None and stored != self.status:
            self.check_status_transition(stored, self.status)
        super().save(*args, **kwargs)
        self._stored_status = self.status

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._stored_status = instance.__dict__.get("status")
        return instance

    def refresh_from_db(self, *args, **kwargs):
        super().refresh_from_db(*args, **kwargs)
        self._stored_status = self.__dict__.get("status")

    def check_status_transition(self, current: str, target: str) -> None:
        self.transitions.check(current, target)
