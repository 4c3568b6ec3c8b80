"""Inbound Stripe events: verified on the raw body, then stored, deduplicated, processed once and
their outcome recorded by the inbox every webhook shares (integrations/inbox.py), so a billing
admin can see why a payment changed.
"""

import json

import stripe
from django.conf import settings

from billing.models import GatewayEvent
from billing.refund_updates import apply_gateway_refund
from billing.states import Gateway
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import IntegrationFailed, InvalidInput
from integrations.gateways.stripe_gateway import refund_from_event
from integrations.inbox import Ignored, Receipt, receive

ACTOR = Actor.system("stripe-webhook", door=Door.WEBHOOK)
REFUND_EVENTS = {"refund.created", "refund.updated", "refund.failed"}


def receive_stripe_event(*, payload: bytes, signature: str) -> Receipt:
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
    return receive(
        events=GatewayEvent,
        key={"gateway": Gateway.STRIPE, "event_id": event["id"]},
        defaults={"event_type": event["type"], "payload": event},
        actor=ACTOR,
        reason=f"Stripe {event['type']}",
        handle=lambda: _apply(event["type"], event["data"]["object"]),
    )


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
    raise Ignored("not an event this app acts on")
