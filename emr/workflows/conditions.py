"""Conditions on payload paths: `order.status equals AWAITING_PAYMENT`.

A path is dotted (`order.totalCents`, `lineItems.0.name`). Comparison is forgiving the way staff
expect from a form where every value is typed as text: "10000" equals 10000, "true" equals true.
Numbers compare as numbers; `greater_than`/`less_than` need numbers on both sides.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from emr.workflows.catalogue import EventType
from emr.workflows.errors import InvalidWorkflow

MISSING = object()

# Operators that compare with a value (the others only look at the path).
OPERATORS_WITH_VALUE = ("equals", "not_equals", "contains", "greater_than", "less_than")
NUMERIC_OPERATORS = ("greater_than", "less_than")


def resolve(payload: dict, path: str) -> Any:
    """The value at `path`, or `MISSING` when any part of the path is absent."""
    current: Any = payload
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _equals(actual: Any, expected: Any) -> bool:
    if actual is MISSING:
        return False
    actual_number, expected_number = as_number(actual), as_number(expected)
    if actual_number is not None and expected_number is not None:
        return actual_number == expected_number
    return _as_text(actual) == _as_text(expected)


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, list):
        return any(_equals(item, expected) for item in actual)
    if isinstance(actual, str):
        return _as_text(expected).lower() in actual.lower()
    return False


def _exists(actual: Any, expected: Any = None) -> bool:
    return actual is not MISSING and actual not in (None, "", [], {})


def _compare(check: Callable[[Decimal, Decimal], bool]) -> Callable[[Any, Any], bool]:
    def compare(actual: Any, expected: Any) -> bool:
        actual_number, expected_number = as_number(actual), as_number(expected)
        if actual_number is None or expected_number is None:
            return False
        return check(actual_number, expected_number)

    return compare


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "equals": _equals,
    "not_equals": lambda actual, expected: not _equals(actual, expected),
    "contains": _contains,
    "exists": _exists,
    "not_exists": lambda actual, expected=None: not _exists(actual),
    "greater_than": _compare(lambda a, b: a > b),
    "less_than": _compare(lambda a, b: a < b),
}


def check_condition(*, path: Any, operator: Any, value: Any, event: EventType) -> None:
    """Refuse a condition that could never mean what staff intended."""
    if not isinstance(path, str) or not event.has_path(path):
        close = difflib.get_close_matches(str(path), list(event.fields()), n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise InvalidWorkflow(
            f"{path!r} is not a field of {event.name}'s payload.{hint}",
            code="workflow.unknown_path",
        )
    if operator not in OPERATORS:
        raise InvalidWorkflow(
            f"{operator!r} is not an operator. Use one of: {', '.join(OPERATORS)}.",
            code="workflow.unknown_operator",
        )
    if operator in OPERATORS_WITH_VALUE and (value is None or value == ""):
        raise InvalidWorkflow(
            f"{path} {operator.replace('_', ' ')} needs a value to compare with.",
            code="workflow.condition_value_required",
        )
    if operator in NUMERIC_OPERATORS and as_number(value) is None:
        raise InvalidWorkflow(
            f"{operator.replace('_', ' ')} compares numbers, and {value!r} is not a number "
            "(compare amounts in cents, e.g. order.totalCents).",
            code="workflow.condition_value_not_a_number",
        )


def evaluate(payload: dict, *, path: str, operator: str, value: Any = None) -> bool:
    """Whether the condition holds for `payload`. The operator was validated on save."""
    return OPERATORS[operator](resolve(payload, path), value)


def describe(*, path: str, operator: str, value: Any = None) -> str:
    """How the admin and the step log phrase a condition: "order.status equals PROCESSING"."""
    words = operator.replace("_", " ")
    return f"{path} {words} {value}" if operator in OPERATORS_WITH_VALUE else f"{path} {words}"
