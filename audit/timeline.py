"""Audit records as a billing admin reads them: when, who, through which door, why, and what
changed (field: [old, new]), newest first."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Model


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    record: str  # "order ORD-000001", "invoice INV-000001", "payment 12"
    action: str  # created, changed, deleted
    actor: str
    door: str
    reason: str
    changes: dict[str, list[Any]] = field(default_factory=dict)


# Bookkeeping that changes on every save and tells a reviewer nothing.
NOISE_FIELDS = ["updated_at"]

_ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}


def entries_for(history_rows, *, label) -> list[TimelineEntry]:
    """Timeline entries for the history rows of one or more objects of one model.

    `history_rows` is a queryset of historical records; `label(row)` names the object.
    """
    rows = list(history_rows.select_related("history_user").order_by("id", "history_id"))
    previous_by_object: dict[Any, Model] = {}
    entries = []
    for row in rows:
        previous = previous_by_object.get(row.id)
        changes = {}
        if previous is not None:
            changes = _changes(previous, row)
        previous_by_object[row.id] = row
        entries.append(
            TimelineEntry(
                at=row.history_date,
                record=label(row),
                action=_ACTIONS.get(row.history_type, row.history_type),
                actor=row.history_actor or getattr(row.history_user, "username", "") or "unknown",
                door=row.history_door,
                reason=row.history_change_reason or "",
                changes=changes,
            )
        )
    return entries


def _changes(previous, row) -> dict[str, list[Any]]:
    # Compared here rather than with simple-history's diff_against, which skips non-editable
    # fields such as status and numbers: the ones a reviewer cares about most.
    changes = {}
    for tracked in row.tracked_fields:
        if tracked.name in NOISE_FIELDS:
            continue
        old, new = getattr(previous, tracked.attname), getattr(row, tracked.attname)
        if old != new:
            changes[tracked.name] = [old, new]
    return changes


def newest_first(*entry_lists: list[TimelineEntry]) -> list[TimelineEntry]:
    merged = [entry for entries in entry_lists for entry in entries]
    return sorted(merged, key=lambda entry: entry.at, reverse=True)
