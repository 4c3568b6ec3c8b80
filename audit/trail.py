"""The audit trail as one list, newest first: every source's rows in one UNION ALL that the
database filters, sorts and pages, then the page's entries loaded source by source.

A page costs the same number of queries whatever the size of the trail: one to count, one for
the page's keys, and at most two per kind of entry on the page. An export walks the same query
with a server-side cursor, a chunk at a time, so memory stays flat however many rows it has.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from audit.sources import BY_KIND, SOURCES, Filters, Scope
from audit.timeline import TimelineEntry

PER_PAGE = 50
CHUNK = 2000


@dataclass(frozen=True)
class TrailFilter:
    scope: Scope | None = None
    actor: str = ""
    door: str = ""
    since: date | None = None
    until: date | None = None
    kind: str = ""
    field: str = ""
    event_type: str = ""

    def narrowed(self, **changes) -> TrailFilter:
        return replace(self, **changes)


def trail(criteria: TrailFilter) -> QuerySet | None:
    """The trail's rows (dicts of COLUMNS), newest first; None when no source can match."""
    own = Filters(field=criteria.field, event_type=criteria.event_type)
    sources = [BY_KIND[criteria.kind]] if criteria.kind in BY_KIND else SOURCES
    parts = []
    for source in sources:
        rows = source.rows(criteria.scope, own)
        if rows is None:
            continue
        parts.append(_common(rows, criteria))
    if not parts:
        return None
    first, *rest = parts
    combined = first.union(*rest, all=True) if rest else first
    return combined.order_by("-t_at", "-t_pk")


def _common(rows: QuerySet, criteria: TrailFilter) -> QuerySet:
    if criteria.actor:
        rows = rows.filter(t_actor__icontains=criteria.actor)
    if criteria.door:
        rows = rows.filter(t_door=criteria.door)
    if criteria.since:
        rows = rows.filter(t_at__gte=datetime.combine(criteria.since, time.min, UTC))
    if criteria.until:
        end = datetime.combine(criteria.until + timedelta(days=1), time.min, UTC)
        rows = rows.filter(t_at__lt=end)
    return rows


def page(criteria: TrailFilter, number: int | str = 1) -> tuple[Page | None, list[TimelineEntry]]:
    rows = trail(criteria)
    if rows is None:
        return None, []
    found = Paginator(rows, PER_PAGE).get_page(number)
    return found, entries(list(found.object_list), only_field=criteria.field)


def entries(rows: list[dict], *, only_field: str = "") -> list[TimelineEntry]:
    """The entries for union rows, in their order: each source loads its own rows at once.
    With `only_field`, an entry shows that field's change and no other."""
    by_kind: dict[str, list[dict]] = {}
    for row in rows:
        by_kind.setdefault(row["t_kind"], []).append(row)
    loaded = {kind: BY_KIND[kind].entries(kind_rows) for kind, kind_rows in by_kind.items()}
    found = [loaded[row["t_kind"]][row["t_pk"]] for row in rows]
    if only_field:
        found = [
            replace(entry, worded=tuple(c for c in entry.worded if c.name == only_field))
            for entry in found
        ]
    return found


def walk(criteria: TrailFilter, *, chunk_size: int = CHUNK) -> Iterator[TimelineEntry]:
    """Every entry of the trail, newest first, read a chunk at a time."""
    rows = trail(criteria)
    if rows is None:
        return
    cursor = rows.iterator(chunk_size=chunk_size)
    while chunk := list(islice(cursor, chunk_size)):
        yield from entries(chunk, only_field=criteria.field)
