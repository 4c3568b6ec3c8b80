"""Beluga telehealth visits, the log of every call to Beluga, chart messages from Beluga's
prescribers, and the webhook events Beluga sent us."""

from django.db import models

from audit.models import audit_trail
from emr.kernel.transitions import GuardedStatusModel
from integrations.beluga.states import (
    MessageChannel,
    ResolvedStatus,
    SubmitStatus,
    VisitStatus,
    visit_transitions,
)
from integrations.inbox import InboundEvent, Outcome


class BelugaVisit(GuardedStatusModel):
    """An order's medical visit at Beluga. `status` is Beluga's visit status.

    Changing a visit never changes its order, invoice, payments, subscription or pharmacy
    order: each of those has its own action.
    """

    transitions = visit_transitions

    order = models.OneToOneField(
        "orders.Order", on_delete=models.PROTECT, related_name="beluga_visit"
    )
    # Ours: chosen when the visit row is created, sent with the submission, and the name of the
    # visit at Beluga from then on (Beluga's "masterId").
    master_id = models.CharField("masterId", max_length=64, unique=True, editable=False)

    submit_status = models.CharField(
        max_length=10, choices=SubmitStatus.choices, blank=True, editable=False
    )
    submit_error = models.CharField(max_length=500, blank=True, editable=False)
    submit_attempts = models.PositiveIntegerField(default=0, editable=False)
    submitted_at = models.DateTimeField(null=True, blank=True, editable=False)

    status = models.CharField(
        "visit status", max_length=10, choices=VisitStatus.choices, blank=True, editable=False
    )
    resolved_status = models.CharField(
        max_length=10, choices=ResolvedStatus.choices, blank=True, editable=False
    )
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = audit_trail()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(submit_status__in=SubmitStatus.values),
                name="beluga_visit_submit_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=VisitStatus.values),
                name="beluga_visit_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(resolved_status__in=ResolvedStatus.values),
                name="beluga_visit_resolved_status_valid",
            ),
        ]
        permissions = [
            ("cancel_belugavisit", "Can cancel a Beluga visit at Beluga"),
            ("submit_belugavisit", "Can retry a Beluga visit submission"),
        ]

    def __str__(self) -> str:
        return f"Beluga visit {self.master_id}"

    @property
    def is_submitted(self) -> bool:
        return self.submit_status == SubmitStatus.SUBMITTED


class BelugaLog(models.Model):
    """One request to Beluga or one webhook from it: the "EMR -> Beluga Logs" view.

    Bodies are stored redacted (integrations/beluga/redaction.py): no API key, no header, no
    PHI. Append-only; nothing edits a log row.
    """

    class Direction(models.TextChoices):
        OUTBOUND = "outbound", "EMR -> Beluga"
        INBOUND = "inbound", "Beluga -> EMR (webhook)"

    visit = models.ForeignKey(
        BelugaVisit, null=True, blank=True, on_delete=models.SET_NULL, related_name="logs"
    )
    master_id = models.CharField("masterId", max_length=64, blank=True, db_index=True)
    direction = models.CharField(max_length=10, choices=Direction.choices)
    operation = models.CharField(max_length=40)  # submit_visit, cancel_visit, webhook:RX_WRITTEN
    method = models.CharField(max_length=10, blank=True)
    path = models.CharField(max_length=300, blank=True)
    request_body = models.JSONField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.operation} {self.master_id}"

    @property
    def succeeded(self) -> bool:
        return not self.error


class BelugaMessage(models.Model):
    """A message Beluga relayed to the chart (DOCTOR_CHAT, ADMIN_CHAT webhooks).

    Doctor-patient messages are what the patient reads in their inbox; CS-admin messages are
    internal. Kept here until the chart has its own message model (emr.Message).
    """

    visit = models.ForeignKey(BelugaVisit, on_delete=models.PROTECT, related_name="messages")
    channel = models.CharField(max_length=20, choices=MessageChannel.choices)
    sender = models.CharField(max_length=200, blank=True)  # as Beluga names them ("Dr. Lee")
    body = models.TextField()
    sent_at = models.DateTimeField()
    # Beluga's id of the message: the same message relayed twice is stored once.
    external_id = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sent_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(channel__in=MessageChannel.values),
                name="beluga_message_channel_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} message {self.external_id}"


class BelugaWebhookEvent(InboundEvent):
    """Each webhook event Beluga sent, stored before it is processed, with the outcome
    (integrations/inbox.py). The unique event id is what makes a replay harmless."""

    event_id = models.CharField(max_length=100, unique=True)
    master_id = models.CharField("masterId", max_length=64, blank=True, db_index=True)

    class Meta(InboundEvent.Meta):
        constraints = [
            models.CheckConstraint(
                condition=models.Q(outcome__in=Outcome.values),
                name="beluga_webhook_outcome_valid",
            ),
        ]
