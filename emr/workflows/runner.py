"""Runs: start one per matching workflow for an event, and advance each step by step.

Claiming. A run is advanced by whoever claims it: READY -> RUNNING under
`SELECT … FOR UPDATE SKIP LOCKED`, with a fresh `claim_token` and a lease. Each step's outcome is
recorded only while that token still matches, so a redelivered task, a second worker or a second
sweep never records (or, for local steps, performs) a step twice. A run whose worker died keeps
its lease until it expires; the resume sweep then returns it to READY. Claiming, recording a
sending step and the sweep are the runner's bookkeeping on its own rows, so they run in plain
`transaction.atomic()`; a local step runs in `service_transaction` as the workflow's actor, and
every step inside a savepoint of its own (`_perform`).

What each kind of step guarantees:
- condition, wait, status update run inside the transaction that records their outcome and
  moves the run on: exactly once (a status update and its step log commit together).
- email, SMS, webhook cannot share our transaction. A STARTED log with the step's idempotency
  key commits first, the effect happens, then the outcome commits. A step recorded as SENT is
  never repeated. If the worker dies in between, the next attempt marks the old log INTERRUPTED
  and sends again with the *same* key: at-least-once delivery, and at-most-once effect wherever
  the receiver deduplicates on the key (webhooks get it as `Idempotency-Key`, emails as a
  deterministic Message-ID, SMS backends as `idempotency_key`). We prefer a rare duplicate to a
  lost payment-recovery email; the duplicate window is one SMTP/HTTP exchange.
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from emr.kernel.actors import Actor, acting
from emr.kernel.enqueue import enqueue
from emr.kernel.services import service_transaction
from emr.workflows.errors import RunNotRetryable
from emr.workflows.models import (
    RunStatus,
    StepKind,
    StepLog,
    StepOutcome,
    Workflow,
    WorkflowEvent,
    WorkflowRun,
)
from emr.workflows.payloads import event_section, latest_payload
from emr.workflows.steps import Outcome, Step, StepContext, get_step, workflow_actor

logger = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 300  # longer than the task time limit: a live worker never loses it
# A READY run not picked up within this long lost its enqueue; the sweep sends it again.
STALE_READY_AFTER = timedelta(seconds=60)
SWEEP_BATCH = 200
# Steps a run may take in one task before it yields the worker to other runs.
STEPS_PER_TURN = 50

EnqueueRun = Callable[[int], None]
_send_advance_run: EnqueueRun = partial(enqueue, "workflows.advance_run")

# What advancing changes on a run; the step snapshot never changes, so it is not rewritten.
RUN_STATE = [
    "status",
    "next_step",
    "attempt",
    "payload",
    "due_at",
    "claim_token",
    "lease_expires_at",
    "last_error",
    "finished_at",
]


class LeaseLost(Exception):
    """Another claimant owns the run now: stop without recording anything on it."""


# --- Starting -------------------------------------------------------------------------------


def start_runs(*, event: WorkflowEvent, enqueue_run: EnqueueRun | None = None) -> list:
    """One run per active workflow triggered by `event`. Called once per event, by whoever
    claimed it for dispatch (see outbox.py)."""
    enqueue_run = enqueue_run or _send_advance_run
    started = []
    workflows = Workflow.objects.filter(active=True, trigger=event.event_type)
    for workflow in workflows.prefetch_related("steps"):
        if event.actor == workflow_actor(workflow.pk).label:
            continue  # its own status update: a workflow never triggers itself into a loop
        # A plain insert: the event is locked and still PENDING, so no run of it exists yet;
        # the (workflow, event) unique constraint is the backstop.
        run = WorkflowRun.objects.create(
            workflow=workflow,
            event=event,
            steps=snapshot_steps(workflow),
            payload=event.payload,
        )
        transaction.on_commit(partial(enqueue_run, run.pk))
        started.append(run)
    return started


def snapshot_steps(workflow: Workflow) -> list[dict]:
    """The steps in order, each config completed with its kind's defaults."""
    return [
        {"kind": step.kind, "config": {**get_step(step.kind).defaults, **step.config}}
        for step in sorted(workflow.steps.all(), key=lambda step: (step.position, step.pk))
    ]


# --- Starting a batch (the delivery task) ---------------------------------------------------


@dataclass(frozen=True)
class Definition:
    """An active workflow as a run starts it: the row and its step snapshot."""

    updated_at: datetime
    workflow: Workflow
    steps: list[dict]


# Per process, keyed by workflow id; every batch checks it against the database (below).
_definitions: dict[int, Definition] = {}

# Steps that write nothing: no savepoint around them in a batch (a database error inside one
# aborts the batch's transaction, and delivery falls back to one event at a time).
_READ_ONLY_KINDS = frozenset({StepKind.CONDITION, StepKind.WAIT})


def active_workflows(triggers: Iterable[str]) -> dict[str, list[Definition]]:
    """The active workflows listening to each of `triggers`, in the order `start_runs` takes
    them, from the process's cache of definitions.

    One query per call lists the active workflows with their `updated_at`, which moves on every
    save (services and admin save the workflow with its steps); a definition whose row changed,
    or that was never seen, is loaded again with its steps, and a deactivated or deleted one is
    simply not listed. So a change is seen by the next batch, in every worker process.
    """
    current = list(
        Workflow.objects.filter(active=True, trigger__in=set(triggers)).values_list(
            "pk", "trigger", "updated_at"
        )
    )
    stale = [
        pk
        for pk, _, updated_at in current
        if pk not in _definitions or _definitions[pk].updated_at != updated_at
    ]
    if stale:
        for workflow in Workflow.objects.filter(pk__in=stale).prefetch_related("steps"):
            _definitions[workflow.pk] = Definition(
                workflow.updated_at, workflow, snapshot_steps(workflow)
            )
    listening: dict[str, list[Definition]] = {}
    for pk, trigger, _ in current:
        definition = _definitions.get(pk)
        if definition is not None and definition.workflow.active:
            listening.setdefault(trigger, []).append(definition)
    return listening


def start_batch(
    *, events: list[WorkflowEvent], enqueue_run: EnqueueRun | None = None
) -> list[WorkflowRun]:
    """`start_runs` for claimed events at once, in the caller's transaction: the runs are
    built in memory, their steps that need no outside call (conditions, waits, status updates)
    taken right away, then the runs and their step logs inserted in one statement each. A run
    that reaches a sending step is left READY and queued after commit; nothing else is queued.

    Exactly once as before: the events are locked and still PENDING, the caller flips them in
    this transaction, and a local step's effect commits (or rolls back) with its log.
    """
    enqueue_run = enqueue_run or _send_advance_run
    listening = active_workflows(event.event_type for event in events)
    runs: list[WorkflowRun] = []
    logs: list[StepLog] = []
    for event in events:
        for definition in listening.get(event.event_type, ()):
            if event.actor == workflow_actor(definition.workflow.pk).label:
                continue  # its own status update: a workflow never triggers itself into a loop
            run = WorkflowRun(
                workflow=definition.workflow,
                event=event,
                steps=copy.deepcopy(definition.steps),
                payload=event.payload,
                status=RunStatus.RUNNING,
            )
            _take_local_steps(run, logs)
            runs.append(run)
    WorkflowRun.objects.bulk_create(runs)
    StepLog.objects.bulk_create(logs)  # each log's run has its id now
    for run in runs:
        if run.status == RunStatus.READY:
            transaction.on_commit(partial(enqueue_run, run.pk))
    return runs


def _take_local_steps(run: WorkflowRun, logs: list[StepLog]) -> None:
    """Advance a run not inserted yet (nobody else can see it) up to its first sending step."""
    for _ in range(STEPS_PER_TURN):
        if run.status != RunStatus.RUNNING:
            return
        if run.current_step is None:
            _release(run, RunStatus.SUCCEEDED)
            return
        step = get_step(run.current_step["kind"])
        if step.sends:
            break
        log = StepLog(run=run, step_number=run.next_step, kind=step.kind, attempt=run.attempt + 1)
        if step.kind in _READ_ONLY_KINDS:
            outcome = _perform(step, run, attempt=log.attempt, savepoint=False)
        else:
            with acting(workflow_actor(run.workflow_id), reason="Workflow step"):
                outcome = _perform(step, run, attempt=log.attempt)
        _apply(run, log, outcome, step)
        logs.append(log)
    if run.status == RunStatus.RUNNING:
        run.due_at = timezone.now()
        _release(run, RunStatus.READY)


# --- Advancing ------------------------------------------------------------------------------


def advance_run(*, run_id: int) -> WorkflowRun | None:
    """Claim the run and carry out its steps until it waits, stops, fails or ends.

    Returns None when there was nothing to claim (done already, or another worker has it).
    """
    run = _claim(run_id)
    if run is None:
        return None
    try:
        for _ in range(STEPS_PER_TURN):
            if run.status != RunStatus.RUNNING:
                return run
            run = _take_step(run)
        return _yield_turn(run) if run.status == RunStatus.RUNNING else run
    except LeaseLost:
        logger.warning("Run %s was claimed by another worker meanwhile; stopping here.", run_id)
        return None


def _claim(run_id: int) -> WorkflowRun | None:
    with transaction.atomic():
        run = (
            WorkflowRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("workflow", "event")
            .filter(pk=run_id, status=RunStatus.READY)
            .first()
        )
        if run is None:
            return None
        run.status = RunStatus.RUNNING
        run.claim_token = uuid.uuid4()
        _renew_lease(run)
        run.save(update_fields=RUN_STATE)
    return run


def _relock(run: WorkflowRun) -> WorkflowRun:
    """The run, locked, provided we still hold the claim."""
    fresh = (
        WorkflowRun.objects.select_for_update(of=("self",))
        .select_related("workflow", "event")
        .get(pk=run.pk)
    )
    if fresh.status != RunStatus.RUNNING or fresh.claim_token != run.claim_token:
        raise LeaseLost
    return fresh


def _renew_lease(run: WorkflowRun) -> None:
    seconds = getattr(settings, "WORKFLOW_RUN_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)
    run.lease_expires_at = timezone.now() + timedelta(seconds=seconds)


def _release(run: WorkflowRun, status: RunStatus) -> None:
    run.status = status
    run.claim_token = None
    run.lease_expires_at = None
    if status in (RunStatus.SUCCEEDED, RunStatus.STOPPED, RunStatus.FAILED):
        run.finished_at = timezone.now()


def _take_step(run: WorkflowRun) -> WorkflowRun:
    if run.current_step is None:
        with transaction.atomic():
            run = _relock(run)
            _release(run, RunStatus.SUCCEEDED)
            run.save(update_fields=RUN_STATE)
        return run
    step = get_step(run.current_step["kind"])
    if step.sends:
        return _take_sending_step(run, step)
    return _take_local_step(run, step)


def _take_local_step(run: WorkflowRun, step: Step) -> WorkflowRun:
    # The step's own writes (a status change) and its log commit together, or neither does.
    with service_transaction(workflow_actor(run.workflow_id), reason="Workflow step"):
        run = _relock(run)
        log = StepLog(run=run, step_number=run.next_step, kind=step.kind, attempt=run.attempt + 1)
        outcome = _perform(step, run, attempt=log.attempt)
        _record(run, log, outcome, step)
    return run


def _take_sending_step(run: WorkflowRun, step: Step) -> WorkflowRun:
    with transaction.atomic():
        run = _relock(run)
        _mark_interrupted_attempts(run)
        run.attempt += 1
        log = StepLog.objects.create(
            run=run,
            step_number=run.next_step,
            kind=step.kind,
            attempt=run.attempt,
            outcome=StepOutcome.STARTED,
            idempotency_key=run.current_step_key,
        )
        _renew_lease(run)
        run.save(update_fields=RUN_STATE)
    # Outside any transaction: an HTTP or SMTP exchange must not hold row locks.
    outcome = _perform(step, run, attempt=log.attempt)
    with transaction.atomic():
        try:
            run = _relock(run)
        except LeaseLost:
            _fill_log(log, outcome)  # still true, and staff should see it
            log.save()
            raise
        _record(run, log, outcome, step)
    return run


def _mark_interrupted_attempts(run: WorkflowRun) -> None:
    for log in run.logs.filter(step_number=run.next_step, outcome=StepOutcome.STARTED):
        log.outcome = StepOutcome.INTERRUPTED
        log.detail = (
            "The worker stopped during this attempt, so whether it was delivered is unknown. "
            "It is sent again with the same idempotency key."
        )
        log.finished_at = timezone.now()
        log.save()


def _perform(step: Step, run: WorkflowRun, *, attempt: int, savepoint: bool = True) -> Outcome:
    context = StepContext(
        workflow_id=run.workflow_id,
        workflow_name=run.workflow.name,
        signing_secret=run.workflow.signing_secret,
        payload={**run.payload, "event": event_section(run.event)},
        idempotency_key=run.current_step_key,
        attempt=attempt,
        latest_payload=partial(latest_payload, run.event),
    )
    try:
        # A savepoint: a step that fails half-way leaves none of its writes behind.
        with transaction.atomic() if savepoint else nullcontext():
            return step.run(run.current_step["config"], context)
    except Exception as error:  # a bug in a step must fail the run visibly, not the worker
        logger.exception("Step %s of run %s crashed", run.next_step, run.pk)
        return Outcome(log=StepOutcome.FAILED, detail=f"unexpected error: {error!r}")


def _fill_log(log: StepLog, outcome: Outcome) -> None:
    log.outcome = outcome.log
    log.detail = outcome.detail
    log.response_status = outcome.response_status
    log.response_body = outcome.response_body
    log.finished_at = timezone.now()


def _record(run: WorkflowRun, log: StepLog, outcome: Outcome, step: Step) -> None:
    """Write the step's log and move the run on, in the caller's transaction."""
    _apply(run, log, outcome, step)
    log.save()
    run.save(update_fields=RUN_STATE)


def _apply(run: WorkflowRun, log: StepLog, outcome: Outcome, step: Step) -> None:
    """The step's log filled in and the run moved on, in memory."""
    _fill_log(log, outcome)
    if outcome.log in (StepOutcome.PASSED, StepOutcome.SENT, StepOutcome.UPDATED):
        _next_step(run, payload=outcome.payload)
        if run.current_step is None:
            _release(run, RunStatus.SUCCEEDED)  # in this transaction: one commit fewer
        else:
            _renew_lease(run)
    elif outcome.log == StepOutcome.WAITING:
        _next_step(run, payload=outcome.payload)
        run.due_at = outcome.wait_until
        _release(run, RunStatus.WAITING)
    elif outcome.log == StepOutcome.SKIPPED:
        if outcome.payload is not None:
            run.payload = _without_event(outcome.payload)
        _release(run, RunStatus.STOPPED)
    else:
        _failed(run, log, outcome, step)


def _next_step(run: WorkflowRun, *, payload: dict | None) -> None:
    run.next_step += 1
    run.attempt = 0
    if payload is not None:
        run.payload = _without_event(payload)


def _without_event(payload: dict) -> dict:
    # The event section is rebuilt from the event row for every step; the run stores the rest.
    return {key: value for key, value in payload.items() if key != "event"}


def _failed(run: WorkflowRun, log: StepLog, outcome: Outcome, step: Step) -> None:
    delays = step.retry_delays()
    if outcome.retryable and log.attempt <= len(delays):
        delay = timedelta(seconds=delays[log.attempt - 1])
        log.outcome = StepOutcome.RETRYING
        log.retry_at = timezone.now() + delay
        log.detail += (
            f"; retrying in {delay.total_seconds():g} s (attempt {log.attempt + 1} of "
            f"{len(delays) + 1})"
        )
        run.due_at = log.retry_at
        _release(run, RunStatus.WAITING)
        return
    if outcome.retryable:
        log.detail += f"; gave up after {log.attempt} attempts"
    run.last_error = f"Step {run.next_step} ({step.kind.label}): {log.detail}"
    _release(run, RunStatus.FAILED)


def _yield_turn(run: WorkflowRun) -> WorkflowRun:
    # A very long workflow gives the worker back and continues in a fresh task.
    with transaction.atomic():
        run = _relock(run)
        run.due_at = timezone.now()
        _release(run, RunStatus.READY)
        run.save(update_fields=RUN_STATE)
        transaction.on_commit(partial(_send_advance_run, run.pk))
    return run


# --- The resume sweep (beat) ----------------------------------------------------------------


def resume_due_runs(
    *, limit: int = SWEEP_BATCH, enqueue_run: EnqueueRun | None = None
) -> list[int]:
    """Wake runs whose wait or retry backoff is over, and recover runs whose worker died or whose
    enqueue was lost. Returns the ids it queued.

    Each run is claimed under SKIP LOCKED and moved to READY in the same transaction, so two
    sweeps running at once resume disjoint sets.
    """
    enqueue_run = enqueue_run or _send_advance_run
    now = timezone.now()
    due = (
        Q(status=RunStatus.WAITING, due_at__lte=now)
        | Q(status=RunStatus.RUNNING, lease_expires_at__lte=now)
        | Q(status=RunStatus.READY, due_at__lte=now - STALE_READY_AFTER)
    )
    with transaction.atomic():
        runs = list(
            WorkflowRun.objects.select_for_update(skip_locked=True)
            .filter(due)
            .order_by("due_at", "id")[:limit]
        )
        for run in runs:
            run.due_at = now
            _release(run, RunStatus.READY)
            run.save(update_fields=RUN_STATE)
            transaction.on_commit(partial(enqueue_run, run.pk))
    return [run.pk for run in runs]


# --- Staff actions --------------------------------------------------------------------------


def retry_run(
    *, run: WorkflowRun, actor: Actor, enqueue_run: EnqueueRun | None = None
) -> WorkflowRun:
    """Run a failed run again from the step that failed (with a fresh retry budget)."""
    enqueue_run = enqueue_run or _send_advance_run
    with service_transaction(actor, reason=f"Workflow run #{run.pk} retried"):
        run = WorkflowRun.objects.select_for_update().get(pk=run.pk)
        if run.status != RunStatus.FAILED:
            raise RunNotRetryable(
                f"Only a failed run can be retried; run #{run.pk} is "
                f"{run.get_status_display().lower()}."
            )
        StepLog.objects.create(
            run=run,
            step_number=run.next_step,
            kind=run.current_step["kind"],
            attempt=run.attempt,
            outcome=StepOutcome.RETRY_REQUESTED,
            detail=f"Retried from step {run.next_step} by {actor.label}.",
            finished_at=timezone.now(),
        )
        run.attempt = 0
        run.last_error = ""
        run.finished_at = None
        run.due_at = timezone.now()
        _release(run, RunStatus.READY)
        run.save(update_fields=RUN_STATE)
        transaction.on_commit(partial(enqueue_run, run.pk))
    return run
