"""The one way to write a service: `with service_transaction(actor, reason=...)`.

    def cancel_order(*, order, actor, reason):
        reason = require_reason(reason, prompt="Say why the order is cancelled")
        with service_transaction(actor, reason=reason):
            order = lock_order(order.pk)
            ...

The service a door calls opens the outermost transaction, `atomic(durable=True)`: nothing it
writes is committed by anyone but itself, so a refusal anywhere inside leaves nothing behind. A
service called from inside another joins that transaction (as a savepoint, so a refusal it
raises and its caller handles undoes only its own writes) and stamps its own reason on the
history rows it writes. Validate before opening: bad input never reaches the database.

A savepoint costs two statements and is only worth them where a caller handles a nested
service's refusal and goes on. An outermost service whose code never does says so with
`savepoints=False`: the services it calls then join its transaction without one, and any
refusal rolls the whole change back (a caller inside that did catch one would get Django's
"error in the current transaction" on its next query: loud, never half a change).
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction

from emr.kernel.actors import Actor, AuditStamp, acting
from emr.kernel.errors import InvalidInput

_inside_service: ContextVar[bool] = ContextVar("inside_service", default=False)
# Inside an outermost service opened with savepoints=False: nested services join without one.
_joining: ContextVar[bool] = ContextVar("joining", default=False)
_riders: ContextVar[list[Callable[[], None]] | None] = ContextVar("riders", default=None)
# What the outermost service transaction open now collects for just before its commit.
_collected: ContextVar[dict[str, tuple[list, Callable[[list], None]]] | None] = ContextVar(
    "collected", default=None
)


@contextmanager
def service_transaction(
    actor: Actor, *, reason: str, savepoints: bool = True
) -> Iterator[AuditStamp]:
    if not isinstance(actor, Actor):
        raise TypeError(f"A service needs an Actor (who is acting), not {actor!r}.")
    outermost = not _inside_service.get()
    token = _inside_service.set(True)
    joining = _joining.set(not savepoints if outermost else _joining.get())
    if outermost:
        atomic = transaction.atomic(durable=True)
    else:
        atomic = transaction.atomic(savepoint=not _joining.get())
    collected = _collected.set({}) if outermost else None
    try:
        with atomic, acting(actor, reason=reason) as stamp:
            yield stamp
            riders = _riders.get()
            while outermost and riders:
                riders.pop(0)()
            if outermost:
                for items, flush in _collected.get().values():
                    flush(items)
    finally:
        _joining.reset(joining)
        if collected is not None:
            _collected.reset(collected)
        _inside_service.reset(token)


def collected_until_commit(key: str, flush: Callable[[list], None]) -> list | None:
    """A list that lives as long as the outermost service transaction open now: `flush(items)`
    runs once, inside that transaction, just before it commits (after its riders), and not at
    all if it rolls back. The same list for the same `key` all transaction long, so what a
    service and the services it calls add is written together. None outside a service
    transaction: the caller then acts at once."""
    collected = _collected.get()
    if collected is None:
        return None
    if key not in collected:
        collected[key] = ([], flush)
    return collected[key][0]


@contextmanager
def with_the_next_change(write: Callable[[], None]) -> Iterator[None]:
    """Run `write()` inside the next outermost service transaction opened in this block, just
    before it commits: a record of why a change was made (what staff were shown) commits with
    the change or not at all, without the door wrapping a service in its own transaction. A
    service refused before it wrote anything runs nothing."""
    token = _riders.set([write])
    try:
        yield
    finally:
        _riders.reset(token)


def require_reason(reason: str | None, *, prompt: str = "Say why", code: str = "reason_required"):
    """The reason a person gave, stripped; refused when empty. `prompt` says what it is for."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(f"{prompt}: a reason is required.", code=code)
    return reason
