"""A patient pays one of their open invoices (a recovery invoice, typically) with a saved card,
through `billing.payments.charge_invoice`: the service CS and the API use. Its success records
the invoice PAID, recalculates the order and, through the InvoicePaid reaction, takes the
subscription out of recovery; a decline is recorded as a FAILED payment.

When the order's refund terms must be accepted before paying, the acceptance the patient ticked
is recorded first (`billing.policies.acknowledge_order`, channel portal, the fingerprint of the
text the page showed, address and browser), then the charge is made in the same request."""

import re

from billing.models import AcknowledgementChannel, Invoice, Payment
from billing.payments import charge_invoice
from billing.policies import acknowledge_order, unacknowledged_versions
from emr.kernel.actors import Actor
from emr.kernel.errors import DomainError, InvalidInput
from emr.models import Patient
from emr.portal.scope import own_cards, own_invoice

REASON = "Paid by the patient in the portal"

# What a patient reads when the payment did not go through, by the refusal's code. Each says
# whether money was taken; none shows a code or a staff instruction.
_SENTENCES = {
    "invoice.not_payable": "This invoice is already paid or closed: there is nothing to pay.",
    "payment.in_progress": (
        "A payment of this invoice is already being processed. Wait a minute, then reload "
        "this page before trying again."
    ),
    "payment.outcome_unknown": (
        "We could not get an answer from the payment processor, so we do not know yet whether "
        "the payment went through. Do not pay again: the clinic checks it within minutes, and "
        "this page will show the result."
    ),
    "payment.gateway_mismatch": (
        "The clinic can no longer charge this card. Choose another card, or contact the clinic "
        "to add a new one. No money was taken."
    ),
    "portal.card_not_found": "Choose one of your saved cards. No money was taken.",
    "payment.policy_not_acknowledged": (
        "Read the refund terms above and tick the box to accept them before paying. No money "
        "was taken."
    ),
    "acknowledgement.terms_changed": (
        "The refund terms changed while this page was open. Read the terms shown now and tick "
        "the box to accept them. No money was taken."
    ),
}
_GATEWAY_UNAVAILABLE = (
    "The payment system is not available right now. No money was taken. Please try again "
    "later, or contact the clinic."
)


def pay_invoice(
    *,
    patient: Patient,
    number: str,
    card_id: int,
    actor: Actor,
    accepted_terms_sha256: str | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
) -> Payment:
    """Charge the invoice with the patient's saved card. `accepted_terms_sha256` is the
    fingerprint of the refund terms the patient ticked on the page (None: none were asked);
    their acceptance is recorded before the charge, which refuses a purchase whose terms must
    be accepted and are not (`payment.policy_not_acknowledged`)."""
    invoice = own_invoice(patient, number, queryset=Invoice.objects.select_related("order"))
    card = own_cards(patient).filter(pk=card_id).first()
    if card is None:
        raise InvalidInput(_SENTENCES["portal.card_not_found"], code="portal.card_not_found")
    if accepted_terms_sha256 is not None and unacknowledged_versions(invoice.order):
        acknowledge_order(
            order=invoice.order,
            channel=AcknowledgementChannel.PORTAL,
            actor=actor,
            text_sha256=accepted_terms_sha256,
            ip_address=ip_address,
            user_agent=user_agent,
        )
    return charge_invoice(invoice=invoice, payment_method=card, actor=actor, reason=REASON)


# The adapters' decline sentences quote the issuer: "The card was declined (generic_decline):
# Your card was declined." (Stripe), "The card was declined (NMI says: DECLINE). …" (NMI).
_QUOTED_ISSUER = [
    re.compile(r"\(NMI says: (?P<said>.+?)\)"),
    re.compile(r"^The card was declined \([\w.-]+\): (?P<said>.+)$"),
]


def issuer_words(message: str) -> str:
    """What the card issuer said, without the gateway's codes around it."""
    for pattern in _QUOTED_ISSUER:
        found = pattern.search(message or "")
        if found:
            return found["said"].strip()
    return message or ""


def refusal_sentence(error: DomainError) -> str:
    """The refusal in a patient's words. A decline quotes the card issuer's own answer."""
    if error.code == "payment.declined":
        said = issuer_words(error.detail)
        return (
            f"The payment did not go through. The card issuer answered: “{said}” No money was "
            "taken. Try another card, or ask your bank why it was declined."
        )
    if error.code in _SENTENCES:
        return _SENTENCES[error.code]
    if error.code.startswith("payment.gateway_"):
        return _GATEWAY_UNAVAILABLE
    return error.detail
