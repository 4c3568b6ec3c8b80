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


class ChainLayout(models.Model):
    """The columns a history table had when rows were sealed: a row is re-hashed over exactly
    those, so a column added later does not make every older row look changed."""

    digest = models.CharField(max_length=64, unique=True)
    table_name = models.CharField(max_length=100)
    columns = models.JSONField()

    def __str__(self) -> str:
        return f"{self.table_name} ({len(self.columns)} columns)"


class ChainLink(models.Model):
    """One sealed history row: append-only, filled by `audit.chain.seal_pending`.

    `chain_hash` = sha256(previous link's chain_hash + row_hash), so changing, removing or
    re-ordering any sealed row, or any link, breaks every hash after it.
    """

    sequence = models.BigIntegerField(unique=True)
    table_name = models.CharField(max_length=100)
    history_id = models.BigIntegerField()
    layout = models.ForeignKey(ChainLayout, on_delete=models.PROTECT, related_name="+")
    row_hash = models.CharField(max_length=64)
    chain_hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["table_name", "history_id"], name="chain_link_row")
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.table_name} {self.history_id}"


class ChainDigest(models.Model):
    """The chain's head at one moment, also written to a file an auditor keeps elsewhere."""

    sequence = models.BigIntegerField()
    chain_hash = models.CharField(max_length=64)
    taken_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.taken_at:%Y-%m-%d %H:%M} #{self.sequence} {self.chain_hash[:12]}"


class DecisionRecord(models.Model):
    """What staff saw when they decided: the confirmation page's checklist, item by item, as
    it was shown, stored in the transaction of the change it led to (audit/decisions.py)."""

    action = models.CharField(max_length=60)
    content_type = models.ForeignKey(
        "contenttypes.ContentType", on_delete=models.PROTECT, related_name="+"
    )
    object_id = models.CharField(max_length=64)
    record_label = models.CharField(max_length=200)
    # The order, subscription and patient concerned, for their timelines (no constraint: like
    # the history rows, a decision outlives nothing it describes but must not block a change).
    order = models.ForeignKey(
        "orders.Order",
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    patient = models.ForeignKey(
        "emr.Patient",
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor = models.CharField(max_length=150)
    door = models.CharField(max_length=20)
    reason = models.TextField()
    at = models.DateTimeField()
    heading = models.CharField(max_length=300, blank=True)
    consequence = models.TextField(blank=True)
    items = models.JSONField(default=list)  # [{key, label, state, sentence}], as shown
    will_not_do = models.JSONField(default=list)
    shown_sha256 = models.CharField(max_length=64)
    # Whether the door proved the actor was shown this checklist (the admin's signed page, an
    # API client sending the digest it read); otherwise it is what the app showed at that time.
    seen = models.BooleanField(
        default=True, verbose_name="proved shown to the actor (signed page or digest sent)"
    )

    class Meta:
        indexes = [models.Index(fields=["content_type", "object_id"])]
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.record_label}: {self.action} by {self.actor}"
