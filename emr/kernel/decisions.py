"""What staff were shown when they confirmed a change, and how it is kept with the change.

A confirmation page shows a checklist (items with a state and a sentence) and what will
happen. `shown(...)` is that content as data, with its SHA-256; the page carries it signed, and
on submit the door recomputes the checklist: the same digest means the facts staff read still
hold, and exactly that is recorded; another digest means they changed meanwhile, and the page
is shown again instead of acting on stale facts. The recorder (audit/decisions.py, installed at
start-up since the kernel imports nothing of ours) writes it in the change's own transaction.
"""

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from django.core import signing

from emr.kernel.actors import Actor
from emr.kernel.services import with_the_next_change

_SALT = "emr.kernel.decisions"


@dataclass(frozen=True)
class Shown:
    action: str
    heading: str = ""
    consequence: str = ""
    items: list[dict[str, str]] = field(default_factory=list)
    will_not_do: list[str] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def signed(pages: list[Shown], where: str) -> str:
    """The digest of what one page shows (one `Shown` per record it is about), signed for that
    page (`where`: the record or list, and the tool or action)."""
    return signing.Signer(salt=f"{_SALT}:{where}").sign(_digest(pages))


def matches(signed_digest: str | None, pages: list[Shown], where: str) -> bool:
    """Whether the page submitted showed exactly `pages` (recomputed now)."""
    try:
        shown_then = signing.Signer(salt=f"{_SALT}:{where}").unsign(signed_digest or "")
    except signing.BadSignature:
        return False
    return shown_then == _digest(pages)


def _digest(pages: list[Shown]) -> str:
    return hashlib.sha256(" ".join(page.sha256 for page in pages).encode()).hexdigest()


def shown(*, action: str, consequence: str = "", checklist: Any = None) -> Shown:
    """`checklist`: a preflight (with `heading`, `items` of key/label/state/sentence and
    `will_not_do`), or None when the page shows only what will happen."""
    if checklist is None:
        return Shown(action=action, consequence=consequence)
    return Shown(
        action=action,
        heading=checklist.heading,
        consequence=consequence,
        items=[
            {
                "key": item.key,
                "label": item.label,
                "state": str(item.state),
                "sentence": item.sentence,
            }
            for item in checklist.items
        ],
        will_not_do=list(checklist.will_not_do),
    )


Recorder = Callable[..., None]
_recorder: Recorder | None = None


def install(recorder: Recorder) -> None:
    """`recorder(record=, shown=, actor=, reason=, seen=)` writes the decision (set once, at
    start-up)."""
    global _recorder  # one recorder per process, set once at start-up
    _recorder = recorder


@contextmanager
def deciding(
    *, record: Any, shown: Shown, actor: Actor, reason: str, seen: bool = True
) -> Iterator[None]:
    """Inside this block, the first change a service commits carries the decision record.
    `seen`: the door proved the actor was shown exactly this (False: what the app would have
    shown then, for a client that did not say what it read)."""
    if _recorder is None:
        raise RuntimeError("No decision recorder is installed (emr.apps installs it).")
    recorder = _recorder

    def write() -> None:
        recorder(record=record, shown=shown, actor=actor, reason=reason, seen=seen)

    with with_the_next_change(write):
        yield
