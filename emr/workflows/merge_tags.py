"""Merge tags: `Hi {{patient.firstName}}, order {{order.orderNumber}} is {{order.total}}.`

Tags are checked against the trigger's payload fields when the workflow is saved (see
`validation.py`), so at send time every tag names a real field; a field that is empty for this
event (no subscription on a manual order) renders as nothing rather than failing the step.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from emr.workflows.catalogue import EventType
from emr.workflows.conditions import MISSING, resolve
from emr.workflows.errors import InvalidWorkflow

TAG = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
# What a well-formed tag looks like inside the braces.
PATH = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)*$")


def tags_in(template: str) -> list[str]:
    """Every tag's path, in order of appearance (duplicates kept)."""
    return TAG.findall(template or "")


def check_template(template: str, *, event: EventType, field: str) -> None:
    """Refuse a template with a malformed tag or a tag the event's payload does not have."""
    for path in tags_in(template):
        if not PATH.match(path):
            raise InvalidWorkflow(
                f"{field}: {{{{{path}}}}} is not a merge tag; "
                "write one like {{patient.firstName}}.",
                code="workflow.unknown_merge_tag",
            )
        if not event.has_path(path):
            raise InvalidWorkflow(
                f"{field}: the merge tag {{{{{path}}}}} is not a field of {event.name}."
                + suggestion(path, event),
                code="workflow.unknown_merge_tag",
            )
    stray = TAG.sub("", template or "")
    if "{{" in stray or "}}" in stray:
        raise InvalidWorkflow(
            f"{field}: a merge tag is not closed; write tags as {{{{order.orderNumber}}}}.",
            code="workflow.unknown_merge_tag",
        )


def suggestion(path: str, event: EventType) -> str:
    close = difflib.get_close_matches(path, list(event.fields()), n=1)
    return (
        f" Did you mean {close[0]}?" if close else f" See the {event.name} fields in the catalogue."
    )


def render(template: str, payload: dict) -> str:
    return TAG.sub(lambda match: _as_text(resolve(payload, match.group(1))), template or "")


def _as_text(value: Any) -> str:
    if value is MISSING or value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
