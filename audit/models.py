from django.db import models
from simple_history.models import HistoricalRecords


class AuditedHistory(models.Model):
    """Fields every historical record carries beyond simple-history's own user and reason."""

    history_actor = models.CharField(max_length=150, blank=True)
    history_door = models.CharField(max_length=20, blank=True)

    class Meta:
        abstract = True


def audit_trail(**kwargs) -> HistoricalRecords:
    """The history every model that carries money, status or consent keeps."""
    return HistoricalRecords(bases=[AuditedHistory], **kwargs)
