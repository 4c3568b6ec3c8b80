"""The trail as files a billing admin hands to an auditor: CSV and JSON Lines, one row per
changed field (an entry that changed no field, such as a gateway call or a webhook, is one row
with its details), streamed from audit.trail.walk so the size of the export never matters."""

import csv
import io
import json
from collections.abc import Iterator

from audit.timeline import TimelineEntry
from audit.trail import TrailFilter, walk

COLUMNS = [
    "at",
    "actor",
    "door",
    "reason",
    "kind",
    "record",
    "action",
    "field",
    "old",
    "new",
    "details",
]


def rows(entry: TimelineEntry) -> Iterator[dict[str, str]]:
    common = {
        "at": entry.at.isoformat(),
        "actor": entry.who,
        "door": entry.door,
        "reason": entry.reason,
        "kind": entry.kind,
        "record": entry.record,
        "action": entry.action,
        "details": "; ".join(entry.details),
    }
    if not entry.worded:
        yield {**common, "field": "", "old": "", "new": ""}
    for change in entry.worded:
        yield {**common, "field": change.field, "old": change.old, "new": change.new}


def csv_lines(criteria: TrailFilter) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for entry in walk(criteria):
        for row in rows(entry):
            writer.writerow(row)
        # One chunk per entry: the response streams while the trail is read.
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def json_lines(criteria: TrailFilter) -> Iterator[str]:
    for entry in walk(criteria):
        yield "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows(entry))
