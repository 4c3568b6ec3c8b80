""" "Test with sample data": walk a workflow's steps against a payload without doing anything.

Nothing is sent, nothing is written, no run is created: conditions are evaluated, waits are
skipped over, messages are rendered, and each step says what it would have done.
"""

from __future__ import annotations

from dataclasses import dataclass

from emr.workflows.catalogue import get_event_type
from emr.workflows.models import StepOutcome, Workflow
from emr.workflows.payloads import sample_payload
from emr.workflows.runner import snapshot_steps
from emr.workflows.steps import StepContext, get_step


@dataclass(frozen=True)
class PreviewLine:
    step_number: int
    kind: str
    outcome: str
    detail: str


def preview_workflow(*, workflow: Workflow, payload: dict | None = None) -> list[PreviewLine]:
    payload = payload if payload is not None else sample_payload(get_event_type(workflow.trigger))
    context = StepContext(
        workflow_id=workflow.pk,
        workflow_name=workflow.name,
        signing_secret=workflow.signing_secret,
        payload=payload,
        idempotency_key=f"wf{workflow.pk}-preview",
    )
    lines = []
    for number, definition in enumerate(snapshot_steps(workflow), start=1):
        step = get_step(definition["kind"])
        outcome = step.preview(definition["config"], context)
        lines.append(PreviewLine(number, step.kind.value, outcome.log.value, outcome.detail))
        if outcome.log in (StepOutcome.SKIPPED, StepOutcome.FAILED):
            lines.append(PreviewLine(number, step.kind.value, "STOP", "the run would stop here"))
            break
    return lines
