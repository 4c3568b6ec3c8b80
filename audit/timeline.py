"""Audit records as a billing admin reads them: when, who, through which door, why, and what
changed (field: old -> new, in words and money), newest first."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from django.db.models import Model

from emr.kernel.money import format_cents


@dataclass(frozen=True)
class FieldChange:
    """One changed field, worded: status labels, money, dates, yes/no; never raw cents."""

    field: str
    old: str
    new: str
    name: str = ""  # the model field's name, what the "field changed" filter names


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    record: str  # "order ORD-000001", "invoice INV-000001", "payment 12"
    action: str  # created, changed, deleted; for other kinds what happened ("refund succeeded")
    actor: str
    door: str
    reason: str
    changes: dict[str, list[Any]] = field(default_factory=dict)
    # What the audit pages show beyond a history diff: the kind of entry (change, workflow
    # event, gateway call, webhook, portal confirmation), the changes in words, and lines of
    # detail (a workflow event's runs, a webhook's outcome).
    kind: str = "change"
    worded: tuple[FieldChange, ...] = ()
    details: tuple[str, ...] = ()

    @property
    def who(self) -> str:
        return describe_actor(self.actor)


# Bookkeeping that changes on every save and tells a reviewer nothing.
NOISE_FIELDS = ["updated_at"]
# What a created record shows: the fields a reviewer reads first (money and status).
HEADLINE_SUFFIXES = ("status", "_cents")
EMPTY = "—"

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
        previous_by_object[row.id] = row
        entries.append(history_entry(row, previous, label=label(row)))
    return entries


def history_entry(row, previous, *, label: str) -> TimelineEntry:
    """One history row as an entry, diffed against the same object's previous row (or None)."""
    changes = _changes(previous, row) if previous is not None else {}
    if previous is None:
        worded = created_fields(row)
    else:
        worded = tuple(
            FieldChange(
                field_label(row, name),
                describe_value(row, name, old, previous),
                describe_value(row, name, new, row),
                name,
            )
            for name, (old, new) in changes.items()
        )
    return TimelineEntry(
        at=row.history_date,
        record=label,
        action=_ACTIONS.get(row.history_type, row.history_type),
        actor=row.history_actor
        or getattr(getattr(row, "history_user", None), "username", "")
        or "unknown",
        door=row.history_door,
        reason=row.history_change_reason or "",
        changes=changes,
        worded=worded,
    )


def created_fields(row) -> tuple[FieldChange, ...]:
    return tuple(
        FieldChange(
            field_label(row, tracked.name), EMPTY, describe_value(row, tracked.name), tracked.name
        )
        for tracked in row.tracked_fields
        if tracked.name.endswith(HEADLINE_SUFFIXES)
        and getattr(row, tracked.attname) not in (None, "")
    )


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


def field_label(row, name: str) -> str:
    verbose = str(row._meta.get_field(name).verbose_name)
    return verbose.removesuffix(" cents")


def describe_value(row, name: str, value: Any = ..., source=None) -> str:
    """`value` of field `name` in words: a status's label, cents as money in the row's
    currency, a date, yes/no. `source` is the row the value was read from (its currency)."""
    source = source if source is not None else row
    model_field = row._meta.get_field(name)
    if value is ...:
        value = getattr(row, model_field.attname)
    if value is None or value == "":
        return EMPTY
    if name.endswith("_cents"):
        return format_cents(int(value), getattr(source, "currency", "") or "usd")
    choices = dict(model_field.flatchoices)
    if value in choices:
        return str(choices[value])
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    if model_field.is_relation:
        return f"#{value}"
    return str(value)


def describe_actor(label: str) -> str:
    """An actor's label as people say it: "system job: refund-reconciler", "patient ...",
    or the staff member's username."""
    if label.startswith("system:"):
        return f"system job: {label.removeprefix('system:')}"
    if label.startswith("patient:"):
        return f"patient {label.removeprefix('patient:')}"
    return label or "unknown"


def newest_first(*entry_lists: list[TimelineEntry]) -> list[TimelineEntry]:
    merged = [entry for entries in entry_lists for entry in entries]
    return sorted(merged, key=lambda entry: entry.at, reverse=True)
