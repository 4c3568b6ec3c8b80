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
