"""What the patient chart tells the rest of the house (reactions in `emr/reactions.py`)."""

from dataclasses import dataclass

from emr.kernel.actors import Actor
from emr.models import IntakeResponse, SignedDocument


@dataclass(frozen=True)
class IntakeRejected:
    """A reviewer rejected `intake` (saved and locked) with `note`: its order and subscription
    will not go ahead."""

    intake: IntakeResponse
    actor: Actor
    note: str


@dataclass(frozen=True)
class IntakeSentBack:
    """A reviewer sent `intake` back for correction: the order waits for the answers again."""

    intake: IntakeResponse
    actor: Actor


@dataclass(frozen=True)
class IntakeSubmitted:
    """The patient submitted `intake`: its order may move on."""

    intake: IntakeResponse
    actor: Actor


@dataclass(frozen=True)
class DocumentSigned:
    """The patient signed `signed` (a consent, a disclaimer, payment terms): the orders that
    waited for it may move on."""

    signed: SignedDocument
    actor: Actor
