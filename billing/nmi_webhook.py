"""Inbound NMI events (POST /webhooks/nmi/). The door (billing/views.py, through
integrations/webhooks.py) checks NMI's Webhook-Signature; the inbox every webhook shares
(integrations/inbox.py) stores the event in GatewayEvent, beside Stripe's, deduplicates it by
event id, processes it once with the handlers below and records the outcome.

What each event does (the body is read by integrations/gateways/nmi_gateway.WebhookTransaction):
- transaction.refund.success, transaction.void.success: brought in line by the one service for
  refunds a gateway reports (billing/refund_updates.py). The app's own refund or void is
  recognised, by its transaction id once recorded or by its attempt while in flight, and
  recorded once. One made in NMI's merchant portal is recorded, the order's refunded money
  updated and the payment flagged for CS, exactly like a refund in Stripe's dashboard.
  Finding the sale of a portal refund: a refund event names the refund's own id, and NMI files
  the refund under an order id: ours (the attempt's reference) for the app's refunds, the sale's
  (our charge's reference) for a refund the portal makes from the sale.
- transaction.sale.success: the app's own charge is recognised (by transaction id, or by its
  reference, the order id it was sent with); nothing is created, as the app records a charge
  from NMI's answer.
- settlement.batch.complete: the app keeps no settlement state; the event is kept, with which
  of the app's payments it settled. settlement.batch.failure (NMI names only the batch): kept
  for billing to review.
- anything else (failed or unknown actions, auth, capture, credit, recurring, card updater) is
  recorded as ignored.

A signed event lacking what it must carry is answered 400 and recorded FAILED with the reason.
What is stored of an event is what is read here: never the addresses, card or merchant details
NMI also sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError

from billing.models import GatewayEvent, Payment, RefundAttempt
from billing.refund_updates import apply_gateway_refund
from billing.states import Gateway, PaymentKind, RefundAttemptStatus
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import InvalidInput
from integrations.gateways.nmi_gateway import WebhookTransaction
from integrations.inbox import Ignored, Malformed, Receipt, receive

ACTOR = Actor.system("nmi-webhook", door=Door.WEBHOOK)
REFUND_EVENTS = {"transaction.refund.success", "transaction.void.success"}
SETTLEMENT_EVENTS = {"settlement.batch.complete", "settlement.batch.failure"}

KEPT_BODY_FIELDS = (
    "transaction_id",
    "transaction_type",
    "condition",
    "order_id",
    "currency",
    "requested_amount",
    "batch_id",
    "transaction_ids",
)
KEPT_ACTION_FIELDS = (
    "amount",
    "action_type",
    "date",
    "success",
    "source",
    "response_text",
    "response_code",
)


@dataclass(frozen=True)
class NmiEvent:
    event_id: str
    event_type: str  # "" when NMI's envelope had none
    body: Any  # event_body as sent

    @classmethod
    def parse(cls, envelope: Any) -> NmiEvent:
        """InvalidInput when the envelope cannot even be stored (no event id to key it by)."""
        if not isinstance(envelope, dict):
            raise InvalidInput("An NMI event is a JSON object.", code="webhook.invalid")
        event_id, event_type = envelope.get("event_id"), envelope.get("event_type")
        if not isinstance(event_id, str) or not event_id:
            raise InvalidInput("An NMI event needs an event_id.", code="webhook.invalid")
        return cls(
            event_id=event_id[:100],
            event_type=event_type[:100] if isinstance(event_type, str) else "",
            body=envelope.get("event_body"),
        )

    @property
    def payload(self) -> dict[str, Any]:
        """What is stored: the envelope and the fields the handlers read."""
        body = None
        if isinstance(self.body, dict):
            body = {key: self.body[key] for key in KEPT_BODY_FIELDS if key in self.body}
            if isinstance(action := self.body.get("action"), dict):
                body["action"] = {key: action[key] for key in KEPT_ACTION_FIELDS if key in action}
        return {"event_id": self.event_id, "event_type": self.event_type, "event_body": body}


def receive_nmi_event(event: NmiEvent) -> Receipt:
    return receive(
        events=GatewayEvent,
        key={"gateway": Gateway.NMI, "event_id": event.event_id},
        defaults={"event_type": event.event_type, "payload": event.payload},
        actor=ACTOR,
        reason=f"NMI {event.event_type or 'event'}",
        handle=partial(_apply, event),
    )


def _apply(event: NmiEvent) -> tuple[str, str]:
    if not event.event_type:
        raise Malformed("event_type is missing.")
    if event.event_type in REFUND_EVENTS:
        return _apply_refund(_transaction(event))
    if event.event_type == "transaction.sale.success":
        return _recognise_sale(_transaction(event))
    if event.event_type in SETTLEMENT_EVENTS:
        return _record_settlement(event)
    raise Ignored("not an event this app acts on")


def _transaction(event: NmiEvent) -> WebhookTransaction:
    try:
        return WebhookTransaction.from_event_body(event.body)
    except ValueError as missing:
        raise Malformed(f"{missing}.") from None


def _apply_refund(transaction: WebhookTransaction) -> tuple[str, str]:
    if transaction.action == "void":
        sale_id, reference = transaction.transaction_id, _void_in_flight(transaction)
    else:
        charge = _charge_filed_under(transaction.order_id)
        sale_id, reference = (charge.transaction_id if charge else ""), transaction.order_id
    try:
        result = transaction.refund_result(sale_transaction_id=sale_id)
    except ValueError as missing:
        raise Malformed(f"{missing}.") from None
    applied = apply_gateway_refund(
        result=result, gateway=Gateway.NMI, reference=reference, actor=ACTOR
    )
    return applied.outcome, applied.note


def _void_in_flight(void: WebhookTransaction) -> str:
    """The reference of the app's own void of this sale while it is being recorded: NMI files a
    void under the sale's order id, so the attempt's reference does not come back with it."""
    attempt = RefundAttempt.objects.filter(
        charge__gateway=Gateway.NMI,
        charge__transaction_id=void.transaction_id,
        status=RefundAttemptStatus.PENDING,
        amount_cents=void.amount_cents,
    ).first()
    return str(attempt.reference) if attempt else ""


def _charge_filed_under(order_id: str) -> Payment | None:
    try:
        return Payment.objects.filter(
            gateway=Gateway.NMI, kind=PaymentKind.CHARGE, reference=order_id
        ).first()
    except ValidationError:  # not a UUID: not one of our references
        return None


def _recognise_sale(sale: WebhookTransaction) -> tuple[str, str]:
    ours = (
        Payment.objects.filter(
            gateway=Gateway.NMI, kind=PaymentKind.CHARGE, transaction_id=sale.transaction_id
        ).exists()
        or _charge_filed_under(sale.order_id) is not None
    )
    if not ours:
        raise Ignored("a sale the app did not make (in NMI's merchant portal or elsewhere)")
    return GatewayEvent.Outcome.APPLIED, "the app's own charge: already recorded, nothing created"


def _record_settlement(event: NmiEvent) -> tuple[str, str]:
    if not isinstance(event.body, dict):
        raise Malformed("event_body is not an object.")
    ids = event.body.get("transaction_ids") or []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise Malformed("event_body.transaction_ids is not a list of transaction ids.")
    batch = f"settlement batch {event.body.get('batch_id') or '(no id)'}"
    ours = Payment.objects.filter(gateway=Gateway.NMI, transaction_id__in=ids).select_related(
        "invoice"
    )
    which = ", ".join(sorted(f"{p.invoice.number} {p.get_kind_display().lower()}" for p in ours))
    concerning = f"{len(ids)} transaction(s), of the app's: {which or 'none'}"
    if event.event_type == "settlement.batch.failure":
        # NMI's failure event names the batch, not the transactions in it.
        held = f" ({concerning})" if ids else ""
        return (
            GatewayEvent.Outcome.NEEDS_REVIEW,
            f"NMI could not settle {batch}{held}: the money in it may not have reached the "
            "clinic's account. Check the batch in NMI's merchant portal.",
        )
    raise Ignored(f"{batch} settled {concerning}; the app keeps no settlement state")
