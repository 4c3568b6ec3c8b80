"""Checking a workflow definition before it is saved, whichever door saves it.

Everything that could only fail at run time (an unknown merge tag, a path the trigger's payload
does not have, an operator that does not exist, a status a workflow may not set) is refused
here, with the step number and a sentence staff can act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from emr.workflows.catalogue import get_event_type
from emr.workflows.errors import InvalidWorkflow
from emr.workflows.steps import get_step


@dataclass(frozen=True)
class StepSpec:
    kind: str
    config: dict = field(default_factory=dict)


def validate_definition(*, trigger: str, steps: Sequence[StepSpec]) -> list[StepSpec]:
    """The steps with their configs normalised (defaults filled in), or `InvalidWorkflow`."""
    event = get_event_type(trigger)
    if not steps:
        raise InvalidWorkflow("A workflow needs at least one step.", code="workflow.no_steps")
    checked = []
    for number, spec in enumerate(steps, start=1):
        if not isinstance(spec.config, dict):
            raise InvalidWorkflow(
                f"Step {number}: its settings must be a JSON object.", code="workflow.invalid_step"
            )
        try:
            step = get_step(spec.kind)
            config = step.validate(spec.config, event=event)
        except InvalidWorkflow as problem:
            raise InvalidWorkflow(
                f"Step {number} ({spec.kind}): {problem.detail}", code=problem.code
            ) from None
        checked.append(StepSpec(kind=spec.kind, config=config))
    return checked
