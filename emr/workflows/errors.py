"""The refusals of the workflows app, each with a stable code."""

from emr.kernel.errors import InvalidInput, StateConflict


class UnknownEventType(InvalidInput):
    code = "workflow.unknown_event"


class WrongSubject(InvalidInput):
    """An event emitted about something it is not about (`subscription.cancelled` of an order)."""

    code = "workflow.wrong_subject"


class InvalidWorkflow(InvalidInput):
    """A workflow definition that cannot run: refused when it is saved, never at run time."""

    code = "workflow.invalid"


class RunNotRetryable(StateConflict):
    code = "workflow.run_not_failed"


class WorkflowHasRuns(StateConflict):
    code = "workflow.has_runs"
