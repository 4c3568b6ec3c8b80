"""Domain events: how one app lets others react to its change without importing them.

A service that changes something other apps care about publishes a small frozen dataclass it
defines itself (`billing.events.InvoicePaid`). The reactions to each event are listed in one
table, `emr/reactions.py`, installed when Django starts, and run synchronously, in the
publisher's transaction: a reaction that refuses rolls the whole change back, exactly as if the
publisher had called it directly. Django signals are not used for this: their receivers are
scattered and hidden behind `save()`.
"""

from collections.abc import Callable, Mapping, Sequence

Reaction = Callable[[object], None]

_reactions: dict[type, tuple[Reaction, ...]] | None = None


def install(table: Mapping[type, Sequence[Reaction]]) -> None:
    """Make `table` (event class -> reactions, in the order they run) the one in force."""
    global _reactions  # one table per process, set once at start-up
    _reactions = {event_type: tuple(reactions) for event_type, reactions in table.items()}


def publish(event: object) -> None:
    """Run every reaction to `event`, in order, in the caller's transaction."""
    if _reactions is None:
        raise RuntimeError("The reaction table is not installed (emr.apps installs it).")
    for reaction in _reactions.get(type(event), ()):
        reaction(event)
