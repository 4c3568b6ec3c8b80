"""A model whose `status` can only move along its transition table, whoever calls save().

The service checks the move under a row lock first; this guard is the second wall, so an admin
edit, a shell script or a bug cannot walk a REFUNDED order or a CANCELLED subscription back.
"""

from typing import ClassVar

from django.db import models

from emr.statemachine import TransitionTable


class GuardedStatusModel(models.Model):
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
