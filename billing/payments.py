"""Saving cards and charging invoices through the clinic's active gateway.

A charge is at most once: the PENDING payment row is committed (under the order's lock) before
the gateway is called, its `reference` is the gateway idempotency key, and a second charge of
the same invoice meanwhile is refused. The gateway is called with no transaction open; the
answer is then recorded in a short transaction of its own. When that answer is lost (a
timeout, a dropped connection, a crash), the row stays PENDING until the charge janitor,
`reconcile_charges`, asks the gateway what happened.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from billing.events import CardRemoved, InvoicePaid
from billing.invoices import set_invoice_status
from billing.models import GatewaySettings, Invoice, Payment, PaymentMethod
from billing.policies import require_acknowledged
from billing.states import Gateway, InvoiceStatus, PaymentKind, PaymentStatus
from emr.kernel.actors import Actor
from emr.kernel.card_numbers import is_card_number, scrub_card_numbers
from emr.kernel.errors import DomainError, IntegrationFailed, InvalidInput, StateConflict
from emr.kernel.events import publish
from emr.kernel.services import require_reason, service_transaction
from emr.models import Patient
from emr.workflows.outbox import emit
from integrations.gateways import registry
from integrations.gateways.base import (
    ChargeResult,
    GatewayAuthenticationFailed,
    GatewayError,
    GatewayNotConfigured,
    InvalidPaymentToken,
    OutcomeUnknown,
    PaymentDeclined,
)
from orders.services import lock_order, recalculate_locked

logger = logging.getLogger(__name__)


class PaymentRequired(DomainError):
    code = "payment.declined"
    http_status = 402


@dataclass(frozen=True)
class OneOffCard:
    """A card token used once, without saving it (checkout)."""

    gateway: str
    token: str


def active_gateway() -> str:
    return GatewaySettings.load().active_gateway


def set_active_gateway(*, gateway: str, actor: Actor, reason: str) -> GatewaySettings:
    """Make `gateway` the one that takes new charges and saves cards. A gateway this server
    has no credentials for is refused: every charge and saved card would fail."""
    _require_known(gateway)
    reason = require_reason(reason, prompt="Say why the active gateway changes")
    if missing := registry.missing_settings(gateway):
        raise IntegrationFailed(
            f"{Gateway(gateway).label} is not configured on this server ({', '.join(missing)} "
            "not set), so it cannot become the active gateway: its charges and card saving "
            "would fail. Ask an administrator to set its credentials first.",
            code="payment.gateway_not_configured",
        )
    with service_transaction(actor, reason=reason):
        current = GatewaySettings.objects.select_for_update().get_or_create(id=1)[0]
        if current.active_gateway != gateway:
            current.active_gateway = gateway
            current.save()
    return current


def _require_known(gateway: str) -> None:
    if gateway not in Gateway.values:
        raise InvalidInput(
            f"Unknown gateway {gateway!r}: choose stripe or nmi.", code="payment.unknown_gateway"
        )


def _require_active(gateway: str) -> None:
    active = active_gateway()
    if gateway != active:
        raise StateConflict(
            f"{Gateway(gateway).label} is not the clinic's active gateway ({Gateway(active).label}"
            "). New cards are saved with the active gateway only.",
            code="payment.gateway_not_active",
        )


def save_card(*, patient: Patient, gateway: str, token: str, actor: Actor) -> PaymentMethod:
    """Vault a card with the active gateway; it becomes the patient's default card."""
    _require_known(gateway)
    if not token:
        raise InvalidInput("A card token is required.", code="payment.token_required")
    _refuse_card_number(token)
    _require_active(gateway)
    adapter = _adapter(gateway)
    try:
        saved = adapter.save_card(
            token=token, customer_reference=f"patient-{patient.pk}", email=patient.email
        )
    except GatewayError as error:
        raise _charge_error(error) from error
    with service_transaction(actor, reason="Card saved"):
        _clear_default(patient.pk)
        return PaymentMethod.objects.create(
            patient=patient,
            gateway=gateway,
            gateway_token=saved.token,
            merchant_account=adapter.merchant_account,
            brand=saved.card.brand,
            last4=saved.card.last4,
            exp_month=saved.card.exp_month,
            exp_year=saved.card.exp_year,
            is_default=True,
        )


def _clear_default(patient_id: int) -> None:
    for previous in PaymentMethod.objects.select_for_update().filter(
        patient_id=patient_id, is_default=True, removed_at__isnull=True
    ):
        previous.is_default = False
        previous.save()


def set_default_card(*, card: PaymentMethod, actor: Actor, reason: str) -> PaymentMethod:
    """Make `card` the patient's default: the one new charges and renewals fall back to."""
    reason = require_reason(reason, prompt="Say why this card becomes the default")
    with service_transaction(actor, reason=reason):
        card = PaymentMethod.objects.select_for_update().get(pk=card.pk)
        if card.removed_at is not None:
            raise StateConflict(
                f"{card} was removed, so it cannot be the default card.",
                code="payment.card_removed",
            )
        active = active_gateway()
        if card.gateway != active:
            raise StateConflict(
                f"{card} is saved in the {card.get_gateway_display()} vault, but the clinic "
                f"charges through {Gateway(active).label}: it cannot be charged, so it cannot be "
                "the default. The patient must save the card again with the active gateway.",
                code="payment.gateway_mismatch",
            )
        if not card.is_default:
            _clear_default(card.patient_id)
            card.is_default = True
            card.save()
    return card


def remove_card(*, card: PaymentMethod, actor: Actor, reason: str) -> PaymentMethod:
    """Mark `card` removed: the app never charges it again (it stays in the gateway's vault).

    A card a live subscription is charged to is refused (the reaction to `CardRemoved`).
    """
    reason = require_reason(reason, prompt="Say why the card is removed")
    with service_transaction(actor, reason=reason):
        card = PaymentMethod.objects.select_for_update().get(pk=card.pk)
        if card.removed_at is not None:
            raise StateConflict(f"{card} was already removed.", code="payment.card_removed")
        card.removed_at = timezone.now()
        card.is_default = False
        card.save()
        publish(CardRemoved(card=card, actor=actor))
    return card


def charge_invoice(
    *,
    invoice: Invoice,
    actor: Actor,
    payment_method: PaymentMethod | None = None,
    one_off: OneOffCard | None = None,
    reason: str = "Invoice charged",
    active_gateway_name: str | None = None,
) -> Payment:
    """Charge the invoice's amount; on success the invoice is PAID and the order recalculated.

    A decline records a FAILED payment, moves the order to AWAITING_PAYMENT and raises
    `payment.declined`; the invoice stays open for another card. A one-off token the gateway
    does not know is no decline but the caller's bad input: the pending row is withdrawn (its
    history says why), nothing else changes, and `payment.invalid_token` is raised.
    `active_gateway_name`: the clinic's active gateway when the caller read it already (a
    sweep reads it once).
    """
    gateway, token = _payment_source(invoice, payment_method, one_off, active=active_gateway_name)
    adapter = _adapter(gateway)
    pending = _open_charge(
        invoice=invoice,
        gateway=gateway,
        merchant_account=adapter.merchant_account,
        payment_method=payment_method,
        actor=actor,
        reason=reason,
    )
    try:
        result = adapter.charge(
            amount_cents=pending.amount_cents,
            currency=pending.currency,
            payment_token=token,
            saved_card=payment_method is not None,
            reference=str(pending.reference),
            description=f"{invoice.number}",
        )
    except OutcomeUnknown as error:
        # The row stays PENDING and blocks another charge until the reconciler asks the gateway.
        raise IntegrationFailed(
            f"{error.message} The payment is marked pending; do not charge again until it is "
            "resolved.",
            code="payment.outcome_unknown",
        ) from error
    except GatewayError as error:
        if one_off is not None and isinstance(error, InvalidPaymentToken):
            withdraw_charge(payment=pending, actor=actor)
        else:
            record_failed_charge(payment=pending, message=error.message, actor=actor)
        raise _charge_error(error, one_off=one_off is not None) from error
    return record_successful_charge(payment=pending, result=result, actor=actor, reason=reason)


def _payment_source(
    invoice: Invoice,
    payment_method: PaymentMethod | None,
    one_off: OneOffCard | None,
    *,
    active: str | None = None,
) -> tuple[str, str]:
    if (payment_method is None) == (one_off is None):
        raise InvalidInput(
            "Pay with either a saved card or a one-off card token, not both or neither.",
            code="payment.source_required",
        )
    if one_off is not None:
        if one_off.gateway not in Gateway.values or not one_off.token:
            raise InvalidInput(
                "A one-off payment needs a gateway (stripe or nmi) and a card token.",
                code="payment.source_required",
            )
        _refuse_card_number(one_off.token)
        _require_active(one_off.gateway)
        return one_off.gateway, one_off.token
    if payment_method.patient_id != invoice.order.patient_id or payment_method.removed_at:
        raise InvalidInput(
            "That saved card does not belong to this patient (or was removed).",
            code="payment.card_not_found",
        )
    active = active or active_gateway()
    if payment_method.gateway != active:
        raise StateConflict(
            f"This card is saved in the {payment_method.get_gateway_display()} vault, but the "
            f"clinic now charges through {Gateway(active).label}: no compatible payment method. "
            "Save the card again with the active gateway.",
            code="payment.gateway_mismatch",
        )
    return payment_method.gateway, payment_method.gateway_token


def _refuse_card_number(token: str) -> None:
    # The server must never see a card number (PCI SAQ A): one sent where a token belongs is
    # refused before it reaches a gateway, a log or a row.
    if is_card_number(token):
        raise InvalidInput(
            "That looks like a card number. Send a tokenised card from the gateway's card form "
            "(Stripe Elements or NMI Collect.js), never the number itself.",
            code="payment.card_number_refused",
        )


def _adapter(gateway: str):
    try:
        return registry.gateway_for(gateway)
    except GatewayNotConfigured as error:
        raise _charge_error(error) from error


def _open_charge(
    *,
    invoice: Invoice,
    gateway: str,
    merchant_account: str,
    payment_method: PaymentMethod | None,
    actor: Actor,
    reason: str,
) -> Payment:
    """Decide under the order's lock and commit a PENDING charge: the gateway is called after."""
    with service_transaction(actor, reason=reason, savepoints=False):
        order = lock_order(invoice.order_id, with_invoice=True)
        require_acknowledged(order)
        # Read under the order's lock, which every invoice change holds (billing.invoices).
        invoice = order.invoice
        if invoice.status != InvoiceStatus.SENT:
            raise StateConflict(
                f"Invoice {invoice.number} is {invoice.get_status_display().lower()}; only an "
                "open (sent) invoice can be charged.",
                code="invoice.not_payable",
            )
        if invoice.payments.filter(kind=PaymentKind.CHARGE, status=PaymentStatus.PENDING).exists():
            raise StateConflict(
                f"A charge of invoice {invoice.number} is already in progress. Wait for it "
                "before charging again.",
                code="payment.in_progress",
            )
        return Payment.objects.create(
            invoice=invoice,
            kind=PaymentKind.CHARGE,
            status=PaymentStatus.PENDING,
            gateway=gateway,
            merchant_account=merchant_account,
            amount_cents=invoice.amount_cents,
            currency=invoice.currency,
            payment_method=payment_method,
            card_brand=payment_method.brand if payment_method else "",
            card_last4=payment_method.last4 if payment_method else "",
        )


def record_successful_charge(
    *, payment: Payment, result: ChargeResult, actor: Actor, reason: str
) -> Payment:
    with service_transaction(actor, reason=reason, savepoints=False):
        order = lock_order(payment.invoice.order_id)
        # Its invoice comes along, read under the order's lock, which every invoice change
        # holds (billing.invoices): current, and not locked a second time.
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("invoice")
            .get(pk=payment.pk)
        )
        if payment.status != PaymentStatus.PENDING:
            return payment  # already recorded (the reconciler or a retry got there first)
        payment.status = PaymentStatus.SUCCEEDED
        payment.transaction_id = result.transaction_id
        fields = ["status", "transaction_id"]
        if result.card is not None:
            payment.card_brand, payment.card_last4 = result.card.brand, result.card.last4
            fields += ["card_brand", "card_last4"]
        payment.avs_result, payment.cvv_result = result.avs_result[:100], result.cvv_result[:20]
        fields += ["avs_result", "cvv_result"]
        payment.save(update_fields=fields)
        invoice = payment.invoice
        set_invoice_status(invoice, InvoiceStatus.PAID)
        emit("invoice.paid", subject=invoice, actor=actor)
        # Paid: no retry charges it again. Saved with the recalculated status (one save of the
        # order row), or alone when the status stays.
        lease, status = order.recovery_next_retry_at, order.status
        order.recovery_next_retry_at = None
        # Recalculated in place (the locked order is not read again), so a reaction that
        # saves it writes the status it has now into its history.
        order = recalculate_locked(order, actor=actor, invoice=invoice)
        if lease is not None and order.status == status:
            order.save(update_fields=["recovery_next_retry_at", "updated_at"])
        publish(InvoicePaid(invoice=invoice, order=order, actor=actor))
    return payment


def record_failed_charge(*, payment: Payment, message: str, actor: Actor) -> Payment:
    with service_transaction(actor, reason="Charge failed", savepoints=False):
        order = lock_order(payment.invoice.order_id)
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.status != PaymentStatus.PENDING:
            return payment
        payment.status = PaymentStatus.FAILED
        payment.failure_message = scrub_card_numbers(message)[:300]
        payment.save(update_fields=["status", "failure_message"])
        recalculate_locked(order, actor=actor)
        emit("payment.failed", subject=payment, actor=actor)
    return payment


def withdraw_charge(*, payment: Payment, actor: Actor) -> None:
    """Take back a PENDING charge no card was asked for (the gateway did not know the token):
    no failed payment, no `payment.failed`, the order as it was. The payment's history keeps
    its creation and this deletion, with the reason."""
    with service_transaction(actor, reason="Card token unknown to the gateway: nothing charged"):
        lock_order(payment.invoice.order_id)
        Payment.objects.select_for_update().filter(
            pk=payment.pk, status=PaymentStatus.PENDING
        ).delete()


SEND_A_NEW_CARD = (
    "The gateway does not know that card token: it was never issued, has expired or was "
    "already used. Nothing was charged. Send a new card token from the card form."
)


def _charge_error(error: GatewayError, *, one_off: bool = True) -> DomainError:
    if isinstance(error, InvalidPaymentToken) and one_off:
        return InvalidInput(SEND_A_NEW_CARD, code="payment.invalid_token")
    if isinstance(error, PaymentDeclined):
        return PaymentRequired(error.message)
    if isinstance(error, GatewayNotConfigured):
        return IntegrationFailed(error.message, code="payment.gateway_not_configured")
    if isinstance(error, GatewayAuthenticationFailed):
        return IntegrationFailed(error.message, code="payment.gateway_auth_failed")
    return IntegrationFailed(error.message, code="payment.gateway_failed")


def reconcile_charges(*, actor: Actor | None = None, older_than: timedelta | None = None) -> int:
    """The charge janitor: resolve charges left PENDING because the gateway's answer was lost.

    Each is looked up at the gateway that took it, by its reference. Found: recorded as if the
    answer had arrived (the invoice PAID, the order recalculated, a subscription out of
    recovery). Not found: no money moved, so the payment FAILED and the invoice can be charged
    again. It never charges. A gateway that cannot answer now is asked again on the next run.
    `older_than` (longer than the gateway timeout) keeps a charge still in flight from being
    declared missing. Returns the number of charges resolved. Safe to run concurrently: the
    recording re-checks the payment under its lock, so only one run records each answer.
    """
    actor = actor or Actor.system("charge-reconciler")
    if older_than is None:
        older_than = timedelta(seconds=settings.CHARGE_RECONCILE_AFTER_SECONDS)
    stale = Payment.objects.filter(
        kind=PaymentKind.CHARGE,
        status=PaymentStatus.PENDING,
        created_at__lte=timezone.now() - older_than,
        needs_review=False,  # flagged for a person: asking the gateway again changes nothing
    )
    return sum(
        _reconcile_charge(payment, actor=actor)
        for payment in stale.select_related("invoice").order_by("created_at", "id")
    )


NO_CHARGE_AT_THE_GATEWAY = (
    "The gateway has no record of this charge: no money moved. The invoice can be charged again."
)


def _reconcile_charge(payment: Payment, *, actor: Actor) -> bool:
    try:
        found = registry.gateway_for(payment.gateway).find_charge(reference=str(payment.reference))
    except GatewayError as error:
        logger.warning("Charge %s not reconciled now: %s", payment.reference, error.message)
        return False
    try:
        if found is None:
            record_failed_charge(payment=payment, message=NO_CHARGE_AT_THE_GATEWAY, actor=actor)
        else:
            record_successful_charge(
                payment=payment,
                result=found,
                actor=actor,
                reason="Charge confirmed by the gateway after its answer was lost",
            )
    except DomainError as refusal:
        # The answer no longer fits the record (the order was cancelled meanwhile, say): a
        # person decides, and the rest of the sweep goes on.
        _flag_for_review(payment, refusal=refusal, found=found is not None, actor=actor)
        return False
    return True


def _flag_for_review(payment: Payment, *, refusal: DomainError, found: bool, actor: Actor) -> None:
    answer = "took this charge" if found else "has no record of this charge"
    with service_transaction(actor, reason="Charge needs review"):
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if payment.needs_review:
            return
        payment.needs_review = True
        payment.review_note = (
            f"The gateway {answer}, but it could not be recorded: {refusal.detail} "
            "Billing/admin operations must decide (refund it, or record it by hand)."
        )[:300]
        payment.save()
    logger.warning("Charge %s needs review: %s", payment.reference, refusal.code)
