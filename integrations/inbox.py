"""The inbound-webhook inbox: every event a partner pushes to us (Beluga, DispensePro, the own
pharmacy's partner, Stripe) is stored first, deduplicated, processed once, and its outcome
recorded on the stored row, so a replay is harmless and staff can see what each event did.

Each sender keeps its own table (a subclass of `InboundEvent` with its own key and extras) and
its own handlers; `receive()` is the one implementation of the rules:
- the row is committed before processing, so the event id is taken even if processing fails;
- a resent event that was processed or ignored is a duplicate: counted, not processed again;
- a FAILED one (or one whose processing never finished) is processed again when resent;
- the handler runs in a savepoint: one that fails leaves nothing but the recorded outcome;
- `Ignored` (understood, deliberately not acted on) and a refusal (a DomainError: the event
  contradicts what we know) are IGNORED with the reason, kept for staff to review; a crash is
  FAILED and answered 500 (`Receipt.http_status`), so the sender sends it again;
- `Malformed` (signed by its sender, but missing what the event must carry) is FAILED with the
  reason and answered 400: never left RECEIVED, never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.utils import timezone

from emr.kernel.actors import Actor
from emr.kernel.errors import DomainError, InvalidInput
from emr.kernel.services import service_transaction

logger = logging.getLogger(__name__)


class Outcome(models.TextChoices):
    # A table with finer processed outcomes (billing.GatewayEvent: applied, needs review) keeps
    # RECEIVED, IGNORED and FAILED exactly as they are here: receive() relies on them.
    RECEIVED = "RECEIVED", "Received (not processed yet)"
    PROCESSED = "PROCESSED", "Processed"
    IGNORED = "IGNORED", "Ignored"
    FAILED = "FAILED", "Failed (processed again if resent)"


# An event in one of these is processed when it arrives (again); any other outcome is settled.
UNSETTLED = frozenset({Outcome.RECEIVED, Outcome.FAILED})


class InboundEvent(models.Model):
    """One event a sender pushed to us, stored before it is processed, with the outcome. The
    subclass declares what makes the event unique at its sender (a unique event id, or a
    unique (source, event id))."""

    event_id = models.CharField(max_length=100)
    event_type = models.CharField(max_length=100)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.RECEIVED)
    outcome_detail = models.TextField(blank=True)
    deliveries = models.PositiveIntegerField(default=1)  # how many times the sender sent it
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} ({self.get_outcome_display()})"


class Ignored(Exception):
    """The event is understood and deliberately not acted on; `args[0]` says why."""


class Malformed(InvalidInput):
    """The event came from its sender but lacks a field it must carry, or has it in the wrong
    shape; `detail` names it."""

    code = "webhook.invalid"


@dataclass(frozen=True)
class Receipt:
    """What became of one delivery of an event."""

    event_id: str
    outcome: str
    detail: str
    duplicate: bool = False
    malformed: bool = False  # FAILED because the event is malformed, not because we crashed

    @property
    def http_status(self) -> int:
        if self.malformed:
            return 400
        # Answered 500 when processing failed, so the sender resends it and it is tried again.
        return 500 if self.outcome == Outcome.FAILED else 200


# Processes the event: returns (outcome, what it did), or raises Ignored or a DomainError.
Handle = Callable[[], tuple[str, str]]


def receive(
    *,
    events: type[InboundEvent],
    key: dict[str, Any],
    defaults: dict[str, Any],
    actor: Actor,
    reason: str,
    handle: Handle,
) -> Receipt:
    """Store the event `key` names in `events` (with `defaults` when it is new), then process it
    with `handle` unless it is settled, and record the outcome."""
    # Committed on its own, before processing: the event id is taken even if processing fails.
    stored, created = events.objects.get_or_create(**key, defaults=defaults)
    with service_transaction(actor, reason=reason):
        stored = events.objects.select_for_update().get(pk=stored.pk)
        if not created:
            stored.deliveries += 1
        if stored.outcome not in UNSETTLED:
            stored.save(update_fields=["deliveries"])
            return Receipt(
                stored.event_id, stored.outcome, "duplicate: already handled", duplicate=True
            )
        try:
            outcome, detail = _process(stored, handle, actor=actor, reason=reason)
            malformed = False
        except Malformed as malformed_event:
            outcome, detail = Outcome.FAILED, f"malformed: {malformed_event.detail}"
            malformed = True
        stored.outcome, stored.outcome_detail = outcome, detail
        stored.processed_at = timezone.now()
        stored.save(update_fields=["deliveries", "outcome", "outcome_detail", "processed_at"])
    return Receipt(stored.event_id, outcome, detail, malformed=malformed)


def _process(stored: InboundEvent, handle: Handle, *, actor: Actor, reason: str) -> tuple[str, str]:
    try:
        with service_transaction(actor, reason=reason):  # the savepoint
            return handle()
    except Ignored as ignored:
        return Outcome.IGNORED, str(ignored)
    except Malformed:
        raise  # a DomainError, but not a refusal: receive() records it as FAILED
    except DomainError as refusal:
        logger.warning(
            "Event %s (%s) refused: %s", stored.event_id, stored.event_type, refusal.code
        )
        return Outcome.IGNORED, f"refused: {refusal.detail}"
    except Exception as failure:  # recorded, and answered 500 so the sender tries again
        logger.exception("Event %s (%s) failed", stored.event_id, stored.event_type)
        return Outcome.FAILED, f"processing failed: {type(failure).__name__}"
