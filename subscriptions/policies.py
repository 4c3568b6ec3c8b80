"""Who may stop a subscription that still has a financed recovery balance.

The guide ("Patient Cancellation Limits"): a patient with a remaining financed balance cannot
cancel or pause; the cancellation is scheduled instead. Billing admins (permission
`subscriptions.override_recovery_balance`) may act anyway, with a reason. CS is refused like the
patient and told to escalate.
"""

from emr.kernel.actors import Actor, Door
from emr.kernel.errors import Forbidden, StateConflict
from emr.kernel.money import format_cents
from subscriptions.models import Subscription

OVERRIDE_RECOVERY_BALANCE = "subscriptions.override_recovery_balance"
SWITCH_PLAN = "subscriptions.switch_plan"

# The guide's CS explanation, word for word: patients and CS read the same sentence.
RECOVERY_BALANCE_EXPLANATION = (
    "This subscription still has remaining financed balance. Cancellation can be scheduled "
    "after the remaining recovery payments are complete, or billing/admin can review the account."
)
ESCALATE = "Escalate to billing/admin operations if the account needs a manual review."


def is_patient(actor: Actor) -> bool:
    return actor.door == Door.PORTAL


def has_permission(actor: Actor, permission: str) -> bool:
    """Staff permission of the person acting; a patient's portal login never has one."""
    return not is_patient(actor) and actor.user is not None and actor.user.has_perm(permission)


def may_override_recovery_balance(actor: Actor) -> bool:
    return has_permission(actor, OVERRIDE_RECOVERY_BALANCE)


def check_may_stop(subscription: Subscription, *, actor: Actor, action: str) -> None:
    """Refuse `action` ("cancel", "pause") while a recovery balance remains, unless overridden."""
    remaining = subscription.recovery_cycles_remaining
    if remaining == 0 or may_override_recovery_balance(actor):
        return
    raise StateConflict(
        recovery_balance_refusal(subscription, actor=actor, action=action),
        code="subscription.recovery_balance",
    )


def recovery_balance_refusal(subscription: Subscription, *, actor: Actor, action: str) -> str:
    remaining = subscription.recovery_cycles_remaining
    plan = subscription.plan
    owed = (
        f"{remaining} payment{'s' if remaining != 1 else ''} of "
        f"{format_cents(plan.price_cents, plan.currency)} remain"
    )
    if action == "cancel":
        sentence = RECOVERY_BALANCE_EXPLANATION
    else:
        sentence = (
            f"This subscription still has remaining financed balance, so it cannot be {action}d "
            "until the remaining recovery payments are complete, or billing/admin can review "
            "the account."
        )
    sentence = f"{sentence} ({owed}.)"
    return sentence if is_patient(actor) else f"{sentence} {ESCALATE}"


def check_may_switch(actor: Actor) -> None:
    if is_patient(actor) or (actor.user is not None and not has_permission(actor, SWITCH_PLAN)):
        raise Forbidden(
            "Switching plans is done by billing admins. Escalate the request to billing/admin "
            "operations.",
            code="subscription.switch_not_allowed",
        )
