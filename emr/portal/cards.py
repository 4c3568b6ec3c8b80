"""A patient's saved cards: add one, make one the default, remove one.

Each is the billing service staff use (`billing.payments.save_card`, `set_default_card`,
`remove_card`), acting as the patient; a card that is not the patient's answers 404 before any
of them runs. A card arrives as a token from the active gateway's own browser script (Stripe.js
Elements, NMI Collect.js): the card number goes from the patient's browser to the gateway and
never reaches this server, which refuses anything that looks like one all the same.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from billing.models import PaymentMethod
from billing.payments import active_gateway, remove_card, save_card, set_default_card
from billing.states import Gateway
from emr.kernel.actors import Actor
from emr.kernel.errors import DomainError
from emr.models import Patient
from emr.portal.scope import own_card

# What a patient reads when a card action is refused, by the refusal's code; each says what to
# do next, none shows a code or a staff instruction.
_SENTENCES = {
    "payment.card_in_use": (
        "This card pays for one of your subscriptions, so it cannot be removed: the next "
        "payment would have no card. Contact the clinic to move the subscription to another "
        "card first."
    ),
    "payment.card_removed": "This card was already removed.",
    "payment.gateway_not_active": (
        "The clinic changed its payment processor while you were entering the card. Reload "
        "this page and enter the card again. Nothing was saved."
    ),
    "payment.gateway_mismatch": (
        "The clinic can no longer charge this card, so it cannot be your default. Add the card "
        "again below."
    ),
    "payment.token_required": "Enter your card details, then save the card.",
    "payment.card_number_refused": (
        "Enter your card in the card form on this page. Nothing was saved."
    ),
    "payment.declined": (
        "Your bank declined this card, so it was not saved. Check the details, or try another card."
    ),
}
NO_CARD_ENTERED = _SENTENCES["payment.token_required"]
_UNAVAILABLE = (
    "The payment system is not available right now, so the card was not saved. Please try "
    "again later."
)


@dataclass(frozen=True)
class CardEntry:
    """What a page needs to load the active gateway's card form."""

    gateway: str
    script_url: str
    public_key: str  # Stripe's publishable key, NMI's tokenization key: made for browsers
    api_origin: str  # where the script sends the card, when not its own origin

    @property
    def available(self) -> bool:
        return bool(self.script_url and self.public_key)

    def csp_update(self) -> dict[str, list[str]]:
        """The gateway's origins, added on the pages that load its script, and nowhere else."""
        origins = sorted({origin(self.script_url), origin(self.api_origin or self.script_url)})
        return {
            "script-src": [origin(self.script_url)],
            "frame-src": [origin(self.script_url)],
            "connect-src": origins,
        }


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def card_entry() -> CardEntry:
    """The active gateway's card form; settings are read now, so a change applies at once."""
    if active_gateway() == Gateway.STRIPE:
        # Stripe.js sends the card to Stripe's API, not to the script's own origin.
        return CardEntry(
            Gateway.STRIPE,
            settings.STRIPE_JS_URL,
            settings.STRIPE_PUBLISHABLE_KEY,
            settings.STRIPE_API_BASE,
        )
    return CardEntry(Gateway.NMI, settings.NMI_COLLECT_JS_URL, settings.NMI_TOKENIZATION_KEY, "")


def add_card(*, patient: Patient, gateway: str, token: str, actor: Actor) -> PaymentMethod:
    """Save the card the gateway's script tokenised; it becomes the patient's default."""
    return save_card(patient=patient, gateway=gateway, token=token, actor=actor)


def make_default(*, patient: Patient, card_id: int, actor: Actor) -> PaymentMethod:
    card = own_card(patient, card_id)
    return set_default_card(card=card, actor=actor, reason="The patient chose their default card")


def remove(*, patient: Patient, card_id: int, actor: Actor) -> PaymentMethod:
    card = own_card(patient, card_id)
    return remove_card(card=card, actor=actor, reason="Removed by the patient in the portal")


def refusal_sentence(error: DomainError) -> str:
    if error.code in _SENTENCES:
        return _SENTENCES[error.code]
    if error.code.startswith("payment.gateway_"):
        return _UNAVAILABLE
    return error.detail
