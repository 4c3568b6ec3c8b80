"""Inbound Stripe events: verified on the raw body, stored first, processed once.

A redelivered event (same id) is acknowledged and ignored. Processing records its outcome on
the stored event, so a billing admin can see why a payment changed.
"""

import json

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import GatewayEvent
from billing.refund_updates import apply_gateway_refund
from billing.states import Gateway
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import IntegrationFailed, InvalidInput
from integrations.gateways.stripe_gateway import refund_from_event

ACTOR = Actor.system("stripe-webhook", door=Door.WEBHOOK)
REFUND_EVENTS = {"refund.created", "refund.updated", "refund.failed"}


def receive_stripe_event(*, payload: bytes, signature: str) -> GatewayEvent:
    if not settings.STRIPE_WEBHOOK_SECRET:
        raise IntegrationFailed(
            "Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).",
            code="webhook.not_configured",
        )
    try:
        stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
    except (ValueError, stripe.SignatureVerificationError) as error:
        raise InvalidInput(
            "The Stripe signature does not match this body.", code="webhook.bad_signature"
        ) from error
    event = json.loads(payload)
    try:
        with transaction.atomic():
            stored = GatewayEvent.objects.create(
                gateway=Gateway.STRIPE,
                event_id=event["id"],
                event_type=event["type"],
                payload=event,
            )
    except IntegrityError:
        return GatewayEvent.objects.get(gateway=Gateway.STRIPE, event_id=event["id"])
    return process(stored)


def process(stored: GatewayEvent) -> GatewayEvent:
    obj = stored.payload["data"]["object"]
    try:
        outcome, note = _apply(stored.event_type, obj)
    except Exception as error:
        # Kept and visible; Stripe retries a 5xx, and the stored row makes that retry a no-op,
        # so the failure is recorded here for a person instead.
        outcome, note = GatewayEvent.Outcome.FAILED, f"{type(error).__name__}: {error}"
    stored.outcome, stored.note, stored.processed_at = outcome, note, timezone.now()
    stored.save(update_fields=["outcome", "note", "processed_at"])
    return stored


def _apply(event_type: str, obj: dict) -> tuple[str, str]:
    if event_type in REFUND_EVENTS:
        result, reference = refund_from_event(obj)
        applied = apply_gateway_refund(
            result=result, gateway=Gateway.STRIPE, reference=reference, actor=ACTOR
        )
        outcome = (
            GatewayEvent.Outcome.NEEDS_REVIEW
            if applied.needs_review
            else GatewayEvent.Outcome.APPLIED
        )
        return outcome, applied.note
    if event_type == "charge.dispute.created":
        return (
            GatewayEvent.Outcome.NEEDS_REVIEW,
            f"Dispute opened on {obj.get('payment_intent') or obj.get('charge')}: "
            "gather the refund policy, signed agreements and proof of payment.",
        )
    # charge.refunded repeats what the refund.* events carry.
    return GatewayEvent.Outcome.IGNORED, "not an event this app acts on"
