"""The outbox and the automations.

- `WorkflowEvent`: one row per emitted event, written in the same transaction as the change it
  reports (the transactional outbox), then claimed and dispatched once.
- `Workflow` and its ordered `WorkflowStep`s: what clinic staff build.
- `WorkflowRun`: one workflow acting on one event; `StepLog`: every attempt at every step.
"""

import secrets

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone

from audit.models import audit_trail
from emr.workflows.catalogue import EVENT_CHOICES


class DispatchStatus(models.TextChoices):
    PENDING = "PENDING", "Pending (committed, not dispatched yet)"
    DISPATCHED = "DISPATCHED", "Dispatched (runs started)"


class WorkflowEvent(models.Model):
    event_type = models.CharField(max_length=64, db_index=True)
    subject_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    subject_id = models.PositiveBigIntegerField()
    subject = GenericForeignKey("subject_type", "subject_id")
    # "order:42": what the API filters on and people read.
    subject_key = models.CharField(max_length=64, db_index=True)
    # The payload as it was when the event happened; `payloads.build_payload(event.subject)`
    # gives the latest one.
    payload = models.JSONField(default=dict)
    actor = models.CharField(max_length=150, blank=True)
    actor_door = models.CharField(max_length=20, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)

    dispatch_status = models.CharField(
        max_length=12, choices=DispatchStatus.choices, default=DispatchStatus.PENDING
    )
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # How many dispatch attempts picked this row (1 unless the on-commit enqueue was lost).
    dispatch_attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # The sweep's query: committed but not dispatched, oldest first.
            models.Index(
                fields=["occurred_at"],
                condition=models.Q(dispatch_status=DispatchStatus.PENDING),
                name="workflow_event_pending_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(dispatch_status__in=DispatchStatus.values),
                name="workflow_event_dispatch_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.subject_key} (#{self.pk})"


def new_signing_secret() -> str:
    return secrets.token_urlsafe(32)


class StepKind(models.TextChoices):
    CONDITION = "condition", "Condition"
    WAIT = "wait", "Wait"
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    WEBHOOK = "webhook", "Webhook"
    STATUS_UPDATE = "status_update", "Status update"


class Workflow(models.Model):
    """An automation clinic staff build: on `trigger`, run `steps` in order."""

    name = models.CharField(max_length=200)
    trigger = models.CharField(max_length=64, choices=EVENT_CHOICES)
    active = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    # Webhook steps sign their requests with it; the receiver verifies with the same secret.
    signing_secret = models.CharField(max_length=64, default=new_signing_secret)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Who changed an automation that emails patients or moves orders matters as much as the
    # moves themselves.
    history = audit_trail(excluded_fields=["signing_secret"])

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class WorkflowStep(models.Model):
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=20, choices=StepKind.choices)
    # The kind's settings, checked by `validation.py` when the workflow is saved.
    config = models.JSONField(default=dict, blank=True)

    history = audit_trail()

    class Meta:
        ordering = ["workflow", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=StepKind.values), name="workflow_step_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.get_kind_display()}"


class RunStatus(models.TextChoices):
    READY = "READY", "Ready (queued to run)"
    RUNNING = "RUNNING", "Running (claimed by a worker)"
    WAITING = "WAITING", "Waiting (until its due time)"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    STOPPED = "STOPPED", "Stopped by a condition"
    FAILED = "FAILED", "Failed"


# Runs not finished yet: the ones the resume sweep looks at.
OPEN_RUN_STATUSES = [RunStatus.READY, RunStatus.WAITING, RunStatus.RUNNING]


class WorkflowRun(models.Model):
    """One workflow acting on one event. Unique per (workflow, event): redelivery starts nothing.

    A run is claimed by one worker at a time: READY -> RUNNING sets `claim_token` and a lease;
    every step's outcome is recorded only while the token still matches. A run whose lease
    expired (its worker died) goes back to READY through the sweep.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="runs")
    event = models.ForeignKey(WorkflowEvent, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(
        max_length=10, choices=RunStatus.choices, default=RunStatus.READY, db_index=True
    )
    # The steps as they were when the run started: editing a workflow never changes what a
    # waiting run does next.
    steps = models.JSONField(default=list)
    next_step = models.PositiveSmallIntegerField(default=1)  # 1-based, as staff count steps
    attempt = models.PositiveSmallIntegerField(default=0)  # attempts made at `next_step`
    # What the steps read: the event's payload, replaced when a condition re-reads the latest.
    payload = models.JSONField(default=dict)
    # READY: runnable since; WAITING: wake-up time (a wait step or a retry's backoff).
    due_at = models.DateTimeField(default=timezone.now)
    claim_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "event"], name="one_run_per_workflow_and_event"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=RunStatus.values), name="workflow_run_status_valid"
            ),
        ]
        indexes = [
            # The resume sweep's query.
            models.Index(
                fields=["due_at"],
                condition=models.Q(status__in=OPEN_RUN_STATUSES),
                name="workflow_run_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Run #{self.pk} of {self.workflow} on {self.event}"

    @property
    def current_step(self) -> dict | None:
        if self.next_step > len(self.steps):
            return None
        return self.steps[self.next_step - 1]

    @property
    def current_step_key(self) -> str:
        """Stable across attempts and crashes: what receivers deduplicate the step's effect on."""
        return f"wf{self.workflow_id}-run{self.pk}-step{self.next_step}"


class StepOutcome(models.TextChoices):
    STARTED = "STARTED", "Started (outcome not recorded yet)"
    SENT = "SENT", "Sent"
    PASSED = "PASSED", "Condition met"
    SKIPPED = "SKIPPED", "Skipped by condition (run stops)"
    WAITING = "WAITING", "Waiting until"
    UPDATED = "UPDATED", "Status updated"
    RETRYING = "RETRYING", "Failed, will retry"
    FAILED = "FAILED", "Failed"
    INTERRUPTED = "INTERRUPTED", "Interrupted (worker stopped mid-step)"
    RETRY_REQUESTED = "RETRY_REQUESTED", "Retry requested by staff"


class StepLog(models.Model):
    """One attempt at one step of a run, and what came of it."""

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="logs")
    step_number = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=20, choices=StepKind.choices)
    attempt = models.PositiveSmallIntegerField(default=1)
    outcome = models.CharField(max_length=16, choices=StepOutcome.choices)
    detail = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=100, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(outcome__in=StepOutcome.values),
                name="step_log_outcome_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"step {self.step_number} attempt {self.attempt}: {self.get_outcome_display()}"
