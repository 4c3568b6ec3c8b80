"""Transition tables as data, and the one check every status change goes through."""

from collections.abc import Callable, Iterable, Mapping

from emr.errors import InvalidTransition


class TransitionTable:
    """`allowed[current]` is the set of statuses `current` may move to.

    `refuse(current, target)` builds the error for a move the table forbids, so each app keeps
    its own codes and sentences (`order.locked` reads differently from `order.invalid_transition`).
    """

    def __init__(
        self,
        allowed: Mapping[str, Iterable[str]],
        *,
        refuse: Callable[[str, str], InvalidTransition],
    ):
        self.allowed = {current: frozenset(targets) for current, targets in allowed.items()}
        self._refuse = refuse

    def can(self, current: str, target: str) -> bool:
        return target in self.allowed.get(current, frozenset())

    def check(self, current: str, target: str) -> None:
        if not self.can(current, target):
            raise self._refuse(current, target)

    def targets(self, current: str) -> frozenset[str]:
        return self.allowed.get(current, frozenset())
