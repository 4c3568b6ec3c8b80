"""Saving workflow definitions: one path for the API (the admin validates through the same
`validation.validate_definition` in its formset, then saves the rows the admin way)."""

from __future__ import annotations

from collections.abc import Sequence

from emr.kernel.actors import Actor
from emr.kernel.services import service_transaction
from emr.workflows.errors import WorkflowHasRuns
from emr.workflows.models import Workflow, WorkflowStep
from emr.workflows.validation import StepSpec, validate_definition


def create_workflow(
    *,
    name: str,
    trigger: str,
    steps: Sequence[StepSpec],
    actor: Actor,
    active: bool = True,
    description: str = "",
) -> Workflow:
    checked = validate_definition(trigger=trigger, steps=steps)
    with service_transaction(actor, reason="Workflow created"):
        workflow = Workflow.objects.create(
            name=name, trigger=trigger, active=active, description=description
        )
        _replace_steps(workflow, checked)
    return workflow


def update_workflow(
    *,
    workflow: Workflow,
    actor: Actor,
    name: str | None = None,
    trigger: str | None = None,
    steps: Sequence[StepSpec] | None = None,
    active: bool | None = None,
    description: str | None = None,
) -> Workflow:
    """Change what is given. Runs already started keep the steps they started with."""
    trigger = trigger if trigger is not None else workflow.trigger
    current = [StepSpec(kind=step.kind, config=step.config) for step in workflow.steps.all()]
    # The existing steps are checked too: a new trigger may not have the fields they use.
    checked = validate_definition(trigger=trigger, steps=steps if steps is not None else current)
    with service_transaction(actor, reason="Workflow changed"):
        workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
        workflow.trigger = trigger
        for field, value in (("name", name), ("active", active), ("description", description)):
            if value is not None:
                setattr(workflow, field, value)
        workflow.save()
        if steps is not None:
            _replace_steps(workflow, checked)
    return workflow


def _replace_steps(workflow: Workflow, steps: Sequence[StepSpec]) -> None:
    # One by one (not bulk) so each step keeps its history.
    for step in workflow.steps.all():
        step.delete()
    for position, spec in enumerate(steps, start=1):
        WorkflowStep.objects.create(
            workflow=workflow, position=position, kind=spec.kind, config=spec.config
        )


def delete_workflow(*, workflow: Workflow, actor: Actor) -> None:
    """Only a workflow that never ran: a run's log must keep pointing at what it ran."""
    if workflow.runs.exists():
        raise WorkflowHasRuns(
            f"“{workflow.name}” has already run, and its runs stay on record. "
            "Make it inactive instead of deleting it."
        )
    with service_transaction(actor, reason="Workflow deleted"):
        for step in workflow.steps.all():
            step.delete()
        workflow.delete()
