"""Opening and resolving escalations: one function each, behind the admin and the API.

CS opens an escalation when the app refuses something or a case needs another team (the guide's
"CS Escalation Checklist"); the team it is routed to resolves it with a note. Both write their
audit history in the same transaction, with the actor and the reason.
"""

from django.utils import timezone

from emr.kernel.actors import Actor
from emr.kernel.errors import Forbidden, InvalidInput
from emr.kernel.numbering import next_number
from emr.kernel.services import require_reason, service_transaction
from emr.support.models import Escalation
from emr.support.packets import build_packet, render_packet, suggest_route
from emr.support.states import RESOLVE_PERMISSIONS, EscalationRoute, EscalationStatus
from orders.models import Order
from subscriptions.models import Subscription

OPEN_PERMISSION = "support.add_escalation"


def open_escalation(
    *,
    actor: Actor,
    patient_reason: str,
    message: str = "",
    route: str | None = None,
    order: Order | None = None,
    subscription: Subscription | None = None,
) -> Escalation:
    """Build the packet for the order or subscription and store it, routed to `route` (the
    checklist's suggestion when not given). The packet and its text are written once, here."""
    _require(actor, OPEN_PERMISSION, "Your role may not open escalations. Ask a CS lead.")
    patient_reason = require_reason(
        patient_reason,
        prompt="Say why the patient is requesting a refund or cancellation",
        code="escalation.reason_required",
    )
    if route and route not in EscalationRoute.values:
        raise InvalidInput(
            "Route to billing/admin operations, fulfilment or medical operations "
            f"({', '.join(EscalationRoute.values)}).",
            code="escalation.invalid_route",
        )
    message = (message or "").strip()
    packet = build_packet(order=order, subscription=subscription)
    suggestion = suggest_route(packet)
    route = route or suggestion.route
    reason = f"Escalated to {EscalationRoute(route).label}"
    with service_transaction(actor, reason=reason):
        number = next_number("ESC")
        return Escalation.objects.create(
            number=number,
            route=route,
            suggested_route=suggestion.route,
            suggestion_reason=suggestion.reason,
            patient_id=packet.patient_id,
            order_id=packet.order_id,
            subscription_id=packet.subscription.id if packet.subscription else None,
            patient_reason=patient_reason,
            message=message,
            packet=packet.as_json(),
            packet_text=render_packet(
                packet,
                route=route,
                patient_reason=patient_reason,
                message=message,
                number=number,
                opened_by=actor.label,
            ),
            created_by=actor.user,
            created_by_label=actor.label,
        )


def may_resolve(user, escalation: Escalation) -> bool:
    """Each team resolves the escalations routed to it."""
    return user.has_perm(RESOLVE_PERMISSIONS[escalation.route])


def resolve_escalation(*, escalation: Escalation, note: str, actor: Actor) -> Escalation:
    """Close an open escalation with what was done about it (who and when are recorded)."""
    note = (note or "").strip()
    if not note:
        raise InvalidInput(
            "Say how the escalation was resolved: a note is required.",
            code="escalation.note_required",
        )
    with service_transaction(actor, reason=f"Resolved: {note}"):
        escalation = Escalation.objects.select_for_update().get(pk=escalation.pk)
        route = EscalationRoute(escalation.route)
        _require(
            actor,
            RESOLVE_PERMISSIONS[route],
            f"{escalation.number} is routed to {route.label}; only that team may resolve it.",
        )
        escalation.transitions.check(escalation.status, EscalationStatus.RESOLVED)
        escalation.status = EscalationStatus.RESOLVED
        escalation.resolved_at = timezone.now()
        escalation.resolved_by = actor.user
        escalation.resolved_by_label = actor.label
        escalation.resolution_note = note
        escalation.save()
    return escalation


def _require(actor: Actor, permission: str, sentence: str) -> None:
    # A system job acts without a user; a person needs the permission, whatever the door.
    if actor.user is not None and not actor.user.has_perm(permission):
        raise Forbidden(sentence, code="permission_denied")
