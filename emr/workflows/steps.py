"""The step kinds, one small class each, behind a registry (healthchecks' transports style).

Contract: `validate(config, event=)` returns the normalised config or raises `InvalidWorkflow`
(run when the workflow is saved); `run(config, context)` does the step and returns an `Outcome`;
`preview(config, context)` says what `run` would do without doing anything outside the process.

Steps with `sends = True` (email, SMS, webhook) have an effect outside our database. The runner
commits a STARTED log carrying the step's idempotency key *before* calling them, and their
outcome after, so a crash in between is visible and a re-attempt reuses the same key (see
`runner.py` for what that guarantees).
"""

from __future__ import annotations

import json
import logging
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import URLValidator, validate_email
from django.utils import timezone

from emr.communications import Delivery, record_message
from emr.kernel.actors import Actor
from emr.kernel.errors import DomainError
from emr.models import MessageChannel, MessageKind
from emr.workflows import conditions, destinations, merge_tags, signing, sms
from emr.workflows.catalogue import EventType
from emr.workflows.errors import InvalidWorkflow
from emr.workflows.models import StepKind, StepOutcome
from orders.models import Order
from orders.services import STAFF_MOVES, change_status

logger = logging.getLogger(__name__)

DEFAULT_RETRY_DELAYS = (30, 120, 600, 1800, 7200)  # seconds; six attempts over ~2.7 hours
DEFAULT_WEBHOOK_TIMEOUT = 10.0
RESPONSE_BODY_LIMIT = 2000
MAX_WAIT = timedelta(days=366)


def workflow_actor(workflow_id: int) -> Actor:
    """Who a workflow's changes are recorded as, in the audit history and on its events."""
    return Actor.system(f"workflow:{workflow_id}")


@dataclass(frozen=True)
class StepContext:
    """What a step sees: the run's payload (with its `event` section) and who it acts as."""

    workflow_id: int
    workflow_name: str
    signing_secret: str
    payload: dict
    idempotency_key: str
    attempt: int = 1
    # Rebuilds the subject's payload from the database (a condition's "re-read latest").
    latest_payload: Callable[[], dict] | None = None

    @property
    def actor(self) -> Actor:
        return workflow_actor(self.workflow_id)


@dataclass(frozen=True)
class Outcome:
    log: StepOutcome
    detail: str
    retryable: bool = False  # a FAILED outcome the runner may retry with backoff
    wait_until: datetime | None = None
    response_status: int | None = None
    response_body: str = ""
    payload: dict | None = None  # replaces the run's payload (after a re-read)


class Step:
    kind: ClassVar[StepKind]
    sends: ClassVar[bool] = False
    # Config keys holding text with merge tags, checked against the trigger's fields on save.
    templated: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    required: ClassVar[tuple[str, ...]] = ()
    known: ClassVar[tuple[str, ...]] = ()  # optional keys without a default

    def validate(self, config: dict, *, event: EventType) -> dict:
        config = {**self.defaults, **config}
        self._check_keys(config)
        for key in self.templated:
            if not isinstance(config.get(key, ""), str):
                raise InvalidWorkflow(f"{key} must be text.", code="workflow.invalid_step")
            merge_tags.check_template(config.get(key, ""), event=event, field=key)
        return self.check(config, event=event)

    def _check_keys(self, config: dict) -> None:
        allowed = {*self.required, *self.templated, *self.defaults, *self.known}
        unknown = sorted(set(config) - allowed)
        if unknown:
            raise InvalidWorkflow(
                f"unknown setting {', '.join(unknown)}; a {self.kind.label.lower()} step takes "
                f"{', '.join(sorted(allowed))}.",
                code="workflow.invalid_step",
            )
        for key in self.required:
            if config.get(key) in (None, ""):
                raise InvalidWorkflow(f"{key} is required.", code="workflow.invalid_step")

    def check(self, config: dict, *, event: EventType) -> dict:
        """Kind-specific validation beyond keys and merge tags."""
        return config

    def run(self, config: dict, context: StepContext) -> Outcome:
        raise NotImplementedError

    def preview(self, config: dict, context: StepContext) -> Outcome:
        return self.run(config, context)

    def retry_delays(self) -> tuple[float, ...]:
        return ()


class SendingStep(Step):
    """A step with an effect outside our database; failures that may pass are retried."""

    sends = True

    def retry_delays(self) -> tuple[float, ...]:
        return tuple(getattr(settings, "WORKFLOW_RETRY_DELAYS", DEFAULT_RETRY_DELAYS))


class ConditionStep(Step):
    kind = StepKind.CONDITION
    required = ("path", "operator")
    known = ("value", "reread")
    defaults = {"reread": False}

    def check(self, config: dict, *, event: EventType) -> dict:
        conditions.check_condition(
            path=config["path"], operator=config["operator"], value=config.get("value"), event=event
        )
        if not isinstance(config["reread"], bool):
            raise InvalidWorkflow("reread is true or false.", code="workflow.invalid_step")
        return config

    def run(self, config: dict, context: StepContext) -> Outcome:
        payload, fresh = context.payload, None
        if config["reread"] and context.latest_payload is not None:
            fresh = {**context.latest_payload(), "event": context.payload.get("event")}
            payload = fresh
        rule = {key: config.get(key) for key in ("path", "operator", "value")}
        holds = conditions.evaluate(payload, **rule)
        actual = conditions.resolve(payload, config["path"])
        seen = "absent" if actual is conditions.MISSING else repr(actual)
        reread = " (latest payload)" if fresh is not None else ""
        detail = f"{conditions.describe(**rule)}{reread}: {'yes' if holds else 'no'}, is {seen}"
        outcome = StepOutcome.PASSED if holds else StepOutcome.SKIPPED
        return Outcome(log=outcome, detail=detail, payload=fresh)


class WaitStep(Step):
    kind = StepKind.WAIT
    known = ("days", "hours", "minutes", "seconds")

    def check(self, config: dict, *, event: EventType) -> dict:
        for unit in self.known:
            value = config.get(unit, 0)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidWorkflow(
                    f"{unit} must be a number of {unit}, zero or more.",
                    code="workflow.invalid_step",
                )
        duration = self.duration(config)
        if duration <= timedelta(0) or duration > MAX_WAIT:
            raise InvalidWorkflow(
                "a wait lasts more than zero seconds and at most a year; set days, hours, "
                "minutes or seconds.",
                code="workflow.invalid_step",
            )
        return config

    @staticmethod
    def duration(config: dict) -> timedelta:
        return timedelta(**{unit: config.get(unit, 0) for unit in WaitStep.known})

    def run(self, config: dict, context: StepContext) -> Outcome:
        until = timezone.now() + self.duration(config)
        return Outcome(
            log=StepOutcome.WAITING,
            detail=f"waiting until {until:%Y-%m-%d %H:%M:%S} UTC",
            wait_until=until,
        )

    def preview(self, config: dict, context: StepContext) -> Outcome:
        return Outcome(
            log=StepOutcome.WAITING, detail=f"would wait {self.duration(config)}, then continue"
        )


class EmailStep(SendingStep):
    kind = StepKind.EMAIL
    templated = ("to", "subject", "body")
    defaults = {"to": "{{patient.email}}"}
    required = ("subject", "body")

    def run(self, config: dict, context: StepContext) -> Outcome:
        recipient, subject, body = self._render(config, context)
        if not _is_email(recipient):
            return Outcome(log=StepOutcome.FAILED, detail=f"no valid email address: {recipient!r}")
        message = EmailMessage(
            subject=subject,
            body=body,
            to=[recipient],
            headers={
                # Deterministic: a resend after a crash is the same message to every MTA and
                # mail client that deduplicates on Message-ID.
                "Message-ID": f"<{context.idempotency_key}@{_mail_domain()}>",
                "X-Workflow-Idempotency-Key": context.idempotency_key,
            },
        )
        try:
            message.send()
        except (smtplib.SMTPException, OSError) as error:
            _log(
                context, MessageChannel.EMAIL, recipient, subject, body, Delivery(False, str(error))
            )
            return Outcome(
                log=StepOutcome.FAILED, detail=f"email not sent: {error}", retryable=True
            )
        _log(context, MessageChannel.EMAIL, recipient, subject, body, Delivery(True))
        return Outcome(log=StepOutcome.SENT, detail=f"emailed {recipient}: {subject}")

    def preview(self, config: dict, context: StepContext) -> Outcome:
        recipient, subject, body = self._render(config, context)
        return Outcome(log=StepOutcome.SENT, detail=f"would email {recipient}: {subject}\n\n{body}")

    @staticmethod
    def _render(config: dict, context: StepContext) -> tuple[str, str, str]:
        recipient = merge_tags.render(config["to"], context.payload).strip()
        subject = merge_tags.render(config["subject"], context.payload).replace("\n", " ")
        body = merge_tags.render(config["body"], context.payload)
        return recipient, subject, body


def _log(
    context: StepContext,
    channel: MessageChannel,
    recipient: str,
    subject: str,
    body: str,
    delivery: Delivery,
) -> None:
    """The communication log's row for this step's message (one per idempotency key)."""
    record_message(
        channel=channel,
        kind=MessageKind.WORKFLOW,
        recipient=recipient,
        subject=subject,
        body=body,
        delivery=delivery,
        sent_by=f"workflow “{context.workflow_name}” (#{context.workflow_id})",
        patient_id=(context.payload.get("patient") or {}).get("id"),
        order_id=(context.payload.get("order") or {}).get("id"),
        idempotency_key=context.idempotency_key,
    )


def _is_email(text: str) -> bool:
    try:
        validate_email(text)
    except ValidationError:
        return False
    return True


def _mail_domain() -> str:
    return settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "localhost"


class SmsStep(SendingStep):
    kind = StepKind.SMS
    templated = ("to", "body")
    defaults = {"to": "{{patient.phone}}"}
    required = ("body",)

    def run(self, config: dict, context: StepContext) -> Outcome:
        recipient = merge_tags.render(config["to"], context.payload).strip()
        if not recipient:
            return Outcome(log=StepOutcome.FAILED, detail="no phone number to text")
        body = merge_tags.render(config["body"], context.payload)
        try:
            message_id = sms.get_backend().send(
                to=recipient, body=body, idempotency_key=context.idempotency_key
            )
        except sms.SmsDeliveryError as error:
            _log(context, MessageChannel.SMS, recipient, "", body, Delivery(False, str(error)))
            return Outcome(log=StepOutcome.FAILED, detail=f"SMS not sent: {error}", retryable=True)
        _log(context, MessageChannel.SMS, recipient, "", body, Delivery(True, "", str(message_id)))
        return Outcome(log=StepOutcome.SENT, detail=f"texted {recipient} (message {message_id})")

    def preview(self, config: dict, context: StepContext) -> Outcome:
        recipient = merge_tags.render(config["to"], context.payload).strip()
        body = merge_tags.render(config["body"], context.payload)
        return Outcome(log=StepOutcome.SENT, detail=f"would text {recipient or '(none)'}: {body}")


class WebhookStep(SendingStep):
    """JSON POST of the payload, signed; 2xx is delivered, 5xx/408/429/no answer is retried."""

    kind = StepKind.WEBHOOK
    required = ("url",)

    def check(self, config: dict, *, event: EventType) -> dict:
        try:
            URLValidator(schemes=["http", "https"])(config["url"])
        except ValidationError:
            raise InvalidWorkflow(
                f"{config['url']!r} is not an http(s) URL.", code="workflow.invalid_step"
            ) from None
        if refusal := destinations.refusal_for(config["url"]):
            raise InvalidWorkflow(refusal, code="workflow.forbidden_destination")
        return config

    def run(self, config: dict, context: StepContext) -> Outcome:
        if refusal := destinations.refusal_for(config["url"]):
            # The name resolves somewhere else since the workflow was saved: nothing is sent,
            # and retrying would not make the address public.
            return Outcome(log=StepOutcome.FAILED, detail=f"not sent: {refusal}", retryable=False)
        body = self.body(context)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "emr-billing-workflows/1",
            signing.TIMESTAMP_HEADER: str(timestamp),
            signing.SIGNATURE_HEADER: signing.sign(
                secret=context.signing_secret, timestamp=timestamp, body=body
            ),
            signing.IDEMPOTENCY_HEADER: context.idempotency_key,
            "X-Workflow-Attempt": str(context.attempt),
        }
        timeout = getattr(settings, "WORKFLOW_WEBHOOK_TIMEOUT_SECONDS", DEFAULT_WEBHOOK_TIMEOUT)
        try:
            response = requests.post(
                config["url"], data=body, headers=headers, timeout=timeout, allow_redirects=False
            )
        except requests.RequestException as error:
            return Outcome(
                log=StepOutcome.FAILED,
                detail=f"no answer from {config['url']}: {error}",
                retryable=True,
            )
        answer = response.text[:RESPONSE_BODY_LIMIT]
        if 200 <= response.status_code < 300:
            log, retryable = StepOutcome.SENT, False
        else:
            # The receiver is down or busy: try again. A 4xx is the receiver refusing what we
            # send; repeating it would change nothing.
            log = StepOutcome.FAILED
            retryable = response.status_code >= 500 or response.status_code in (408, 429)
        return Outcome(
            log=log,
            detail=f"POST {config['url']} answered HTTP {response.status_code}",
            retryable=retryable,
            response_status=response.status_code,
            response_body=answer,
        )

    def preview(self, config: dict, context: StepContext) -> Outcome:
        return Outcome(
            log=StepOutcome.SENT,
            detail=f"would POST {len(self.body(context))} bytes of signed JSON to {config['url']}",
        )

    @staticmethod
    def body(context: StepContext) -> bytes:
        payload = {key: value for key, value in context.payload.items() if key != "event"}
        envelope = {
            "id": context.idempotency_key,
            "event": context.payload.get("event"),
            "workflow": {"id": context.workflow_id, "name": context.workflow_name},
            "data": payload,
        }
        return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


class StatusUpdateStep(Step):
    """Moves the event's order through `orders.services.change_status`, the staff path: the
    same transition rules, the same history entry (actor `system:workflow:<id>`)."""

    kind = StepKind.STATUS_UPDATE
    required = ("status",)
    defaults = {"reason": ""}

    def check(self, config: dict, *, event: EventType) -> dict:
        if "order" not in event.sections:
            raise InvalidWorkflow(
                f"{event.name} is not about an order, so there is no order status to update.",
                code="workflow.invalid_step",
            )
        if config["status"] not in STAFF_MOVES:
            raise InvalidWorkflow(
                f"{config['status']!r} cannot be set by a workflow; choose one of "
                f"{', '.join(sorted(STAFF_MOVES))} (other statuses follow from payment, intake "
                "and fulfilment; refunds go through the refund action).",
                code="workflow.invalid_step",
            )
        return config

    def run(self, config: dict, context: StepContext) -> Outcome:
        order_id = (context.payload.get("order") or {}).get("id")
        order = Order.objects.filter(pk=order_id).first() if order_id else None
        if order is None:
            return Outcome(log=StepOutcome.FAILED, detail="this event has no order to update")
        reason = config["reason"] or f"Workflow “{context.workflow_name}”"
        try:
            order = change_status(
                order=order, target=config["status"], actor=context.actor, reason=reason
            )
        except DomainError as refusal:
            return Outcome(
                log=StepOutcome.FAILED, detail=f"refused ({refusal.code}): {refusal.detail}"
            )
        return Outcome(
            log=StepOutcome.UPDATED, detail=f"order {order.number} is now {order.status}"
        )

    def preview(self, config: dict, context: StepContext) -> Outcome:
        number = (context.payload.get("order") or {}).get("orderNumber", "(none)")
        return Outcome(
            log=StepOutcome.UPDATED, detail=f"would move order {number} to {config['status']}"
        )


REGISTRY: dict[str, Step] = {
    step.kind.value: step
    for step in (
        ConditionStep(),
        WaitStep(),
        EmailStep(),
        SmsStep(),
        WebhookStep(),
        StatusUpdateStep(),
    )
}


def get_step(kind: str) -> Step:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise InvalidWorkflow(
            f"{kind!r} is not a step kind; use one of {', '.join(REGISTRY)}.",
            code="workflow.invalid_step",
        ) from None
