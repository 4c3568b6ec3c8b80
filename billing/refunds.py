"""The refund flow: the guide's eight steps, one function behind every door.

1. find the linked invoice; 2. find the original successful payment; 3. refund through the same
gateway as that payment; 4. create a new payment row with status REFUNDED; 5. mark the invoice
CANCELLED; 6. mark the order REFUNDED; 7. write audit history; 8. emit order.refunded and
order.updated. A partial refund does steps 1-4, 7 and 8 (order.updated, payment.refunded); the
order becomes REFUNDED, and its invoice CANCELLED, when nothing refundable remains.

Money moves at most once:
- Phase 1 decides under the order's row lock and commits a PENDING RefundAttempt. A second
  request meanwhile sees `refund.in_progress` (the lock, and a unique index on pending attempts)
  or `refund.already_refunded`.
- Phase 2 calls the gateway with no transaction open, the attempt's reference as idempotency key.
- Phase 3 records the answer in a short transaction. If the process dies between phases 2 and 3,
  or the gateway's answer never arrives, the attempt stays PENDING and the refund janitor
  (`billing.refund_reconciler`) asks the gateway what happened to that reference. It never
  refunds again.

Every refusal is a DomainError with a stable code and a sentence CS can act on; it leaves no
trace but the attempt's own audit row (when the gateway was asked). `assess_refund` is the one
answer to "may this order be refunded?": the flow raises its first refusal, the preflight
checklist (emr/support/preflight.py) shows them all.
"""

from dataclasses import dataclass

from django.utils import timezone

from billing.invoices import set_invoice_status
from billing.models import Invoice, Payment, RefundAttempt
from billing.refund_quotes import RefundQuote, quote_refund
from billing.states import (
    Gateway,
    InvoiceStatus,
    PaymentKind,
    PaymentStatus,
    RefundAttemptStatus,
)
from emr.kernel.actors import Actor
from emr.kernel.errors import (
    DomainError,
    Forbidden,
    IntegrationFailed,
    InvalidInput,
    InvalidTransition,
    StateConflict,
)
from emr.kernel.money import format_cents
from emr.kernel.services import require_reason, service_transaction
from emr.workflows.outbox import emit
from integrations.gateways import registry
from integrations.gateways.base import (
    AlreadyRefunded,
    GatewayAuthenticationFailed,
    GatewayError,
    GatewayNotConfigured,
    OutcomeUnknown,
    RefundResult,
    RefundStatus,
)
from orders.models import Order
from orders.services import announce_status, lock_order, move_status
from orders.states import OrderStatus

REFUND_PERMISSION = "orders.refund_order"
ESCALATE = "Do not mark the order refunded by hand; escalate to billing/admin operations."


def refund_order(
    *,
    order: Order,
    actor: Actor,
    reason: str,
    amount_cents: int | None = None,
    override_reason: str = "",
) -> Payment:
    """Refund `amount_cents` (default: all that remains) of the order's original payment.

    More than the refund policy's quote needs `override_reason`, recorded on the attempt.
    Returns the new REFUND payment row (REFUNDED, or PENDING while the gateway settles it).
    """
    _require_refund_permission(actor)
    reason = require_reason(reason, prompt="Say why the order is refunded")
    _validate_amount(amount_cents)
    attempt = _open_attempt(
        order=order,
        actor=actor,
        reason=reason,
        amount_cents=amount_cents,
        override_reason=(override_reason or "").strip(),
    )
    gateway = registry.gateway_for(attempt.gateway)
    try:
        result = gateway.refund(
            transaction_id=attempt.charge.transaction_id,
            amount_cents=attempt.amount_cents,
            currency=attempt.currency,
            reference=str(attempt.reference),
        )
    except OutcomeUnknown as error:
        raise IntegrationFailed(
            f"{error.message} The refund is recorded as pending and will be checked with the "
            "gateway automatically within a few minutes. Do not refund again.",
            code="refund.outcome_unknown",
        ) from error
    except GatewayError as error:
        refusal = _refusal_for(error)
        fail_attempt(attempt=attempt, code=refusal.code, message=refusal.detail, actor=actor)
        raise refusal from error
    return complete_attempt(attempt=attempt, result=result, actor=actor)


def _require_refund_permission(actor: Actor) -> None:
    # System jobs act without a user; a person needs the refund permission, whatever the door.
    if actor.user is not None and not actor.user.has_perm(REFUND_PERMISSION):
        raise Forbidden(
            "Your role may not refund orders. Ask a CS lead or a billing admin.",
            code="permission_denied",
        )


def _validate_amount(amount_cents) -> None:
    if amount_cents is None:
        return
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise InvalidInput(
            "The refund amount must be a whole number of cents.", code="refund.invalid_amount"
        )
    if amount_cents <= 0:
        raise InvalidInput(
            "The refund amount must be more than zero.", code="refund.invalid_amount"
        )


def _open_attempt(
    *, order: Order, actor: Actor, reason: str, amount_cents: int | None, override_reason: str
) -> RefundAttempt:
    """Steps 1-2 and the decision, under the order's lock; commits a PENDING attempt."""
    with service_transaction(actor, reason=reason, savepoints=False):
        order = lock_order(order.pk, with_invoice=True)
        assessment = assess_refund(order, amount_cents=amount_cents)
        if assessment.refusals:
            raise assessment.refusals[0].error
        quote = quote_refund(order, remaining_cents=assessment.remaining_cents)
        overrides_policy = quote.governed and assessment.amount_cents > quote.refundable_cents
        if overrides_policy and not override_reason:
            raise PolicyExceeded(quote, assessment.amount_cents)
        charge = assessment.charge
        return RefundAttempt.objects.create(
            policy_quote_cents=quote.refundable_cents if quote.governed else None,
            policy_override_reason=override_reason if overrides_policy else "",
            order=order,
            charge=charge,
            amount_cents=assessment.amount_cents,
            currency=charge.currency,
            gateway=charge.gateway,
            reason=reason,
            requested_by=actor.user,
            requested_by_label=actor.label,
            door=actor.door,
        )


class PolicyExceeded(StateConflict):
    """More than the refund policy allows, asked without saying why: the quote comes along so
    the door can show what the policy allows."""

    def __init__(self, quote: RefundQuote, amount_cents: int):
        currency = quote.order.currency
        super().__init__(
            f"{format_cents(amount_cents, currency)} is more than the refund policy allows now "
            f"({format_cents(quote.refundable_cents, currency)}): "
            + " ".join(quote.explanation)
            + " To refund more, give an override reason; it is recorded with the refund.",
            code="refund.exceeds_policy",
        )
        self.quote = quote
        self.extra = {
            "quote": {
                "refundable_cents": quote.refundable_cents,
                "explanation": list(quote.explanation),
            }
        }


def refund_quote(order: Order) -> RefundQuote:
    """What the refund policy allows for `order` now, within what can still be refunded."""
    return quote_refund(order, remaining_cents=assess_refund(order).remaining_cents)


# --- May this order be refunded? -----------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """One reason the refund flow refuses, as the error it raises. `check` names the fact it
    rests on, as the preflight checklist names its lines (order_status, invoice, payment,
    transaction_id, remaining, amount, gateway)."""

    check: str
    error: DomainError

    @property
    def code(self) -> str:
        return self.error.code


@dataclass(frozen=True)
class RefundAssessment:
    invoice: Invoice | None
    charge: Payment | None  # the original successful payment: where the money goes back to
    remaining_cents: int  # what is left of it to refund (0 without one)
    amount_cents: int  # what the refund would return: all that remains unless asked for less
    # In the order the flow checks them: the first is the error a refund raises now.
    refusals: tuple[Refusal, ...]


def assess_refund(order: Order, *, amount_cents: int | None = None) -> RefundAssessment:
    """The one answer to "may this order be refunded (by `amount_cents`, default all)?".

    The refund flow asks it under the order's lock and raises the first refusal; the preflight
    checklist asks it of an order loaded with its payments, refunds and attempts prefetched and
    shows every refusal. It reads related rows through `.all()`, so a prefetch serves it.
    """
    refusals = []
    if order.status == OrderStatus.REFUNDED:
        refusals.append(Refusal("order_status", _already_refunded(order)))
    if any(a.status == RefundAttemptStatus.PENDING for a in order.refund_attempts.all()):
        refusals.append(
            Refusal(
                "remaining",
                StateConflict(
                    f"A refund of {order.number} is already in progress. Wait for it to finish "
                    "before refunding again.",
                    code="refund.in_progress",
                ),
            )
        )
    # A missing reverse one-to-one raises a subclass of AttributeError: getattr's default applies.
    invoice = getattr(order, "invoice", None)
    # Read once: the original payment and its refunds are all among the invoice's payments.
    invoice_payments = list(invoice.payments.all()) if invoice is not None else []
    charge = _first_successful_charge(invoice_payments)
    if invoice is None:
        refusals.append(
            Refusal(
                "invoice",
                StateConflict(
                    f"{order.number} has no invoice, so there is no payment to refund. {ESCALATE}",
                    code="refund.no_invoice",
                ),
            )
        )
    elif charge is None:
        refusals.append(
            Refusal(
                "payment",
                StateConflict(
                    f"Invoice {invoice.number} has no successful payment, so the app cannot "
                    "refund it automatically. Check the payment records and the gateway "
                    f"dashboard. {ESCALATE}",
                    code="refund.no_successful_payment",
                ),
            )
        )
    if charge is None:
        return RefundAssessment(invoice, None, 0, 0, tuple(refusals))
    if not charge.transaction_id:
        refusals.append(
            Refusal(
                "transaction_id",
                StateConflict(
                    f"The original payment of {invoice.number} has no gateway transaction id, "
                    f"so the gateway cannot be asked to refund it. {ESCALATE}",
                    code="refund.no_transaction_id",
                ),
            )
        )
    remaining = refundable_cents(charge, invoice_payments=invoice_payments)
    amount = remaining if amount_cents is None else amount_cents
    if remaining <= 0:
        refusals.append(Refusal("remaining", _already_refunded(order)))
    elif amount > remaining:
        refusals.append(
            Refusal(
                "amount",
                InvalidInput(
                    f"Only {format_cents(remaining, charge.currency)} of this payment can still "
                    f"be refunded; {format_cents(amount, charge.currency)} was asked.",
                    code="refund.amount_exceeds_remaining",
                ),
            )
        )
    elif amount == remaining and order.status != OrderStatus.REFUNDED:
        # Refunding all that remains makes the order REFUNDED: its status table must allow it.
        try:
            order.transitions.check(order.status, OrderStatus.REFUNDED)
        except InvalidTransition as refusal:
            refusals.append(Refusal("order_status", refusal))
    gateway_refusal = _gateway_refusal(charge)
    if gateway_refusal is not None:
        refusals.append(Refusal("gateway", gateway_refusal))
    return RefundAssessment(invoice, charge, remaining, amount, tuple(refusals))


def original_payment(invoice: Invoice | None) -> Payment | None:
    """The invoice's first successful charge: the payment a refund returns money from."""
    if invoice is None:
        return None
    return _first_successful_charge(invoice.payments.all())


def _first_successful_charge(payments) -> Payment | None:
    return next(
        (
            payment
            for payment in payments  # ordered by creation (Payment.Meta)
            if payment.kind == PaymentKind.CHARGE and payment.status == PaymentStatus.SUCCEEDED
        ),
        None,
    )


def refundable_cents(charge: Payment, *, invoice_payments=None) -> int:
    """What is left of `charge` once refunds done or in flight are taken off.

    `invoice_payments`, the payments of the charge's invoice when the caller has them in hand,
    saves reading its refunds: a refund row is always written on its charge's invoice
    (`create_refund_row`)."""
    if invoice_payments is None:
        refunds = charge.refunds.all()
    else:
        refunds = (payment for payment in invoice_payments if payment.refund_of_id == charge.pk)
    taken = sum(
        refund.amount_cents
        for refund in refunds
        if refund.status in {PaymentStatus.REFUNDED, PaymentStatus.PENDING}
    )
    return charge.amount_cents - taken


def _gateway_refusal(charge: Payment) -> IntegrationFailed | None:
    """Step 3's precondition: the gateway that took the payment can be asked, as that account."""
    label = Gateway(charge.gateway).label
    if not registry.is_configured(charge.gateway):
        return IntegrationFailed(
            f"This payment was taken through {label}, which is not configured on this server "
            f"now, so it cannot be refunded there. {ESCALATE}",
            code="refund.gateway_not_configured",
        )
    current_account = registry.merchant_account(charge.gateway)
    if charge.merchant_account and charge.merchant_account != current_account:
        return IntegrationFailed(
            f"This payment was taken by another {label} merchant account than the one the app "
            "is configured with now (the credentials changed). Refunding here could send the "
            f"request to the wrong account, so nothing was sent. {ESCALATE}",
            code="refund.gateway_auth_failed",
        )
    return None


def _already_refunded(order: Order) -> StateConflict:
    return StateConflict(
        f"{order.number} is already refunded: nothing is left to refund.",
        code="refund.already_refunded",
    )


def _refusal_for(error: GatewayError) -> DomainError:
    if isinstance(error, AlreadyRefunded):
        return StateConflict(
            f"The gateway says this payment was already refunded ({error.message}). Check the "
            f"gateway dashboard and the payment records. {ESCALATE}",
            code="refund.already_refunded",
        )
    if isinstance(error, GatewayNotConfigured):
        return IntegrationFailed(
            f"{error.message} {ESCALATE}", code="refund.gateway_not_configured"
        )
    if isinstance(error, GatewayAuthenticationFailed):
        return IntegrationFailed(f"{error.message} {ESCALATE}", code="refund.gateway_auth_failed")
    return IntegrationFailed(
        f"The gateway refused the refund: {error.message} {ESCALATE}", code="refund.gateway_failed"
    )


def fail_attempt(*, attempt: RefundAttempt, code: str, message: str, actor: Actor) -> RefundAttempt:
    with service_transaction(actor, reason=f"Refund failed: {code}", savepoints=False):
        attempt = RefundAttempt.objects.select_for_update().get(pk=attempt.pk)
        if attempt.status != RefundAttemptStatus.PENDING:
            return attempt
        _record_failure(attempt, code=code, message=message)
    return attempt


def _record_failure(attempt: RefundAttempt, *, code: str, message: str) -> None:
    attempt.status = RefundAttemptStatus.FAILED
    attempt.error_code = code
    attempt.error_message = message
    attempt.resolved_at = timezone.now()
    attempt.save(update_fields=["status", "error_code", "error_message", "resolved_at"])


def complete_attempt(*, attempt: RefundAttempt, result: RefundResult, actor: Actor) -> Payment:
    """Steps 4-8 for a gateway answer, once: a second caller gets the recorded payment.

    A refund the gateway answers FAILED is recorded (the attempt FAILED, so CS may try again)
    and committed before its error is raised to the caller.
    """
    if result.status == RefundStatus.FAILED:
        why = result.failure_reason or "no reason given"
        attempt = fail_attempt(
            attempt=attempt,
            code="refund.gateway_failed",
            message=f"The gateway reports the refund failed: {why}. {ESCALATE}",
            actor=actor,
        )
        if attempt.status == RefundAttemptStatus.SUCCEEDED:
            return attempt.refund_payment
        raise IntegrationFailed(attempt.error_message, code=attempt.error_code)
    with service_transaction(actor, reason=attempt.reason, savepoints=False):
        order = lock_order(attempt.order_id)
        attempt = (
            RefundAttempt.objects.select_for_update(of=("self",))
            .select_related("charge__invoice")
            .get(pk=attempt.pk)
        )
        if attempt.status == RefundAttemptStatus.SUCCEEDED:
            return attempt.refund_payment
        if attempt.status == RefundAttemptStatus.FAILED:
            raise IntegrationFailed(attempt.error_message, code=attempt.error_code)
        refund = create_refund_row(
            charge=attempt.charge,
            result=result,
            amount_cents=attempt.amount_cents,
            currency=attempt.currency,
        )
        attempt.status = RefundAttemptStatus.SUCCEEDED
        attempt.refund_payment = refund
        attempt.resolved_at = timezone.now()
        attempt.save(update_fields=["status", "refund_payment", "resolved_at"])
        if refund.status == PaymentStatus.REFUNDED:
            # The invoice was read after the order's lock was taken, which every invoice
            # change holds (billing.invoices): it is current.
            invoice = attempt.charge.invoice
            apply_settled_refund(order=order, refund=refund, actor=actor, invoice=invoice)
    return refund


def create_refund_row(
    *, charge: Payment, result: RefundResult, amount_cents: int, currency: str, **review
) -> Payment:
    """Step 4: a new REFUND row pointing at `charge` (never the charge rewritten), REFUNDED
    once the gateway settled it, PENDING until then. `review` flags it for CS."""
    settled = result.status == RefundStatus.SUCCEEDED
    return Payment.objects.create(
        invoice_id=charge.invoice_id,
        kind=PaymentKind.REFUND,
        status=PaymentStatus.REFUNDED if settled else PaymentStatus.PENDING,
        gateway=charge.gateway,
        merchant_account=charge.merchant_account,
        amount_cents=amount_cents,
        currency=currency,
        transaction_id=result.refund_id,
        refund_of=charge,
        card_brand=charge.card_brand,
        card_last4=charge.card_last4,
        **review,
    )


def apply_settled_refund(
    *, order: Order, refund: Payment, actor: Actor, invoice: Invoice | None = None
) -> None:
    """Money is back with the patient: count it and, when nothing remains, close the order.

    The caller holds the order's lock; `invoice`, the refund's invoice, when it read it after
    taking that lock (else it is read here, locked). The order row is saved once (its refunded
    amount and, when nothing remains, its status), then the events go out in their order:
    `payment.refunded`, then `order.refunded` and `order.updated` (or `order.updated` alone).
    """
    order.refunded_cents += refund.amount_cents
    if refundable_cents(refund.refund_of) == 0 and order.status != OrderStatus.REFUNDED:
        if invoice is None:
            invoice = Invoice.objects.select_for_update().get(pk=refund.invoice_id)
        if invoice.status != InvoiceStatus.CANCELLED:
            set_invoice_status(invoice, InvoiceStatus.CANCELLED)
        previous_status = move_status(order, OrderStatus.REFUNDED)
        emit("payment.refunded", subject=refund, actor=actor)
        announce_status(order, previous_status)  # order.refunded and order.updated
    else:
        order.save(update_fields=["refunded_cents", "updated_at"])
        emit("payment.refunded", subject=refund, actor=actor)
        emit("order.updated", subject=order, actor=actor)  # only the refunded amount changed
