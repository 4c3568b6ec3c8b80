import itertools

import pytest

from emr.kernel.errors import InvalidTransition
from subscriptions.states import SubscriptionStatus, subscription_transitions

ALLOWED = {
    ("ACTIVE", "PAUSED"),
    ("ACTIVE", "CANCELLED"),
    ("ACTIVE", "EXPIRED"),
    ("PAUSED", "ACTIVE"),
    ("PAUSED", "CANCELLED"),
    ("PAUSED", "EXPIRED"),
}


@pytest.mark.parametrize(
    ("source", "target"), list(itertools.product(SubscriptionStatus.values, repeat=2))
)
def test_subscription_moves(source, target):
    assert subscription_transitions.can(source, target) is ((source, target) in ALLOWED)
    if (source, target) not in ALLOWED:
        with pytest.raises(InvalidTransition) as refused:
            subscription_transitions.check(source, target)
        expected = (
            "subscription.already_cancelled"
            if source == "CANCELLED"
            else "subscription.invalid_transition"
        )
        assert refused.value.code == expected
