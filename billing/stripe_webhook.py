"""Inbound Stripe events: verified on the raw body, then stored, deduplicated, processed once and
their outcome recorded by the inbox every webhook shares (integrations/inbox.py), so a billing
admin can see why a payment changed. A signed body that is not an event with an id is refused
(400, nothing stored); a stored event without its type or data is recorded FAILED with the
reason and answered 400.
"""

import json
import time
from functools import partial

import stripe
from django.conf import settings

from billing.disputes import apply_gateway_dispute, stripe_dispute_update
from billing.models import GatewayEvent
from billing.refund_updates import apply_gateway_refund
from billing.states import Gateway
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import IntegrationFailed, InvalidInput
from integrations.gateways.stripe_gateway import refund_from_event
from integrations.inbox import Ignored, Malformed, Receipt, receive

ACTOR = Actor.system("stripe-webhook", door=Door.WEBHOOK)
REFUND_EVENTS = {"refund.created", "refund.updated", "refund.failed"}
DISPUTE_EVENTS = {"charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed"}


def receive_stripe_event(*, payload: bytes, signature: str) -> Receipt:
    if not settings.STRIPE_WEBHOOK_SECRET:
        raise IntegrationFailed(
            "Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).",
            code="webhook.not_configured",
        )
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature, settings.STRIPE_WEBHOOK_SECRET, stripe.Webhook.DEFAULT_TOLERANCE
        )
    except (ValueError, stripe.SignatureVerificationError) as error:
        raise InvalidInput(
            "The Stripe signature does not match this body.", code="webhook.bad_signature"
        ) from error
    if _signed_at(signature) > time.time() + stripe.Webhook.DEFAULT_TOLERANCE:
        # Stripe's SDK refuses an old timestamp only; one from the future is as suspect.
        raise InvalidInput(
            "The Stripe signature's timestamp is in the future.", code="webhook.bad_signature"
        )
    try:
        event = json.loads(payload)
    except ValueError as error:
        raise InvalidInput("The body is not JSON.", code="webhook.invalid") from error
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event["id"]:
        raise InvalidInput("A Stripe event is a JSON object with an id.", code="webhook.invalid")
    event_type = event["type"][:100] if isinstance(event.get("type"), str) else ""
    return receive(
        events=GatewayEvent,
        key={"gateway": Gateway.STRIPE, "event_id": event["id"][:100]},
        defaults={"event_type": event_type, "payload": event},
        actor=ACTOR,
        reason=f"Stripe {event_type or 'event'}",
        handle=partial(_apply_event, event),
    )


def _signed_at(signature: str) -> int:
    # verify_header has already parsed this header, so its t= is a valid integer.
    stamps = [part[2:] for part in signature.split(",") if part.startswith("t=")]
    return int(stamps[0])


def _apply_event(event: dict) -> tuple[str, str]:
    data = event.get("data")
    if not event.get("type") or not isinstance(event["type"], str):
        raise Malformed("type is missing.")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise Malformed("data.object is missing.")
    return _apply(event["type"], data["object"])


def _apply(event_type: str, obj: dict) -> tuple[str, str]:
    if event_type in REFUND_EVENTS:
        result, reference = refund_from_event(obj)
        applied = apply_gateway_refund(
            result=result, gateway=Gateway.STRIPE, reference=reference, actor=ACTOR
        )
        return applied.outcome, applied.note
    if event_type in DISPUTE_EVENTS:
        try:
            update = stripe_dispute_update(obj)
        except InvalidInput as error:
            raise Malformed(error.detail) from error
        _dispute, note = apply_gateway_dispute(update=update, gateway=Gateway.STRIPE, actor=ACTOR)
        # A dispute needs someone: its evidence is due by a date.
        return GatewayEvent.Outcome.NEEDS_REVIEW, note
    # charge.refunded repeats what the refund.* events carry.
    raise Ignored("not an event this app acts on")
