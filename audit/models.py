from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords


class AuditedHistory(models.Model):
    """Fields every historical record carries beyond simple-history's own user and reason."""

    history_actor = models.CharField(max_length=150, blank=True)
    history_door = models.CharField(max_length=20, blank=True)

    class Meta:
        abstract = True


class AuditTrail(HistoricalRecords):
    """simple-history's records, indexed by (object, history row): "the version of this object
    before that one" is one index probe, which every diff on the audit pages asks, however
    many versions the object has."""

    def get_meta_options(self, model):
        options = super().get_meta_options(model)
        pk = model._meta.pk.attname
        previous = models.Index(
            fields=[pk, "history_id"], name=f"h_{model._meta.model_name[:18]}_versions"
        )
        options["indexes"] = [*options.get("indexes", ()), previous]
        return options


def audit_trail(**kwargs) -> HistoricalRecords:
    """The history every model that carries money, status or consent keeps."""
    return AuditTrail(bases=[AuditedHistory], **kwargs)


class AccessedPage(models.TextChoices):
    ADMIN_PATIENT = "admin-patient", "Patient page (admin)"
    ADMIN_PROFILE = "admin-profile", "Patient profile (admin)"
    API_PATIENT = "api-patient", "Patient (API)"
    AUDIT_TIMELINE = "audit-timeline", "Audit timeline"
    AUDIT_EXPORT = "audit-export", "Audit export"


class AccessLogEntry(models.Model):
    """One staff look at a patient's record: who, when, what, from where.

    Append-only: a row is written once by `audit.access_log.record_access` and never changed
    or deleted, so the log of who read a chart cannot be trimmed by someone who read it.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user_label = models.CharField("staff member", max_length=150, db_index=True)
    patient = models.ForeignKey(
        "emr.Patient", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    page = models.CharField("what was viewed", max_length=40, choices=AccessedPage.choices)
    record = models.CharField(max_length=200)  # "patient 12", "order ORD-000123"
    path = models.CharField(max_length=500)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "access log entry"
        verbose_name_plural = "access log"
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"{self.user_label} viewed {self.record} ({self.at:%Y-%m-%d %H:%M})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("Access log entries are never changed once written.")
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Access log entries are never deleted.")
