"""Refund policies: making and revising them (every edit a new, immutable version), and the
patient's acceptance of the terms an order was sold under.

A clinic wins a refund argument by pointing at the version the patient accepted before paying;
so charging a purchase whose terms require acceptance, and that has none, is refused.
"""

import hashlib

from billing.models import (
    AcknowledgementChannel,
    PolicyAcknowledgement,
    RefundPolicy,
    RefundPolicyVersion,
)
from billing.policy_rules import parse_rules, policy_text
from emr.kernel.actors import Actor
from emr.kernel.errors import InvalidInput, StateConflict
from emr.kernel.services import service_transaction
from orders.models import Order
from orders.services import lock_order
from orders.states import OrderKind

# Orders the patient chose to buy. Renewal, recovery and payoff orders collect money for a
# purchase already accepted, so they are never held back for a new acceptance.
PURCHASE_KINDS = frozenset({OrderKind.CHECKOUT, OrderKind.SUBSCRIPTION_FIRST, OrderKind.MANUAL})
STAFF_CHANNELS = frozenset({AcknowledgementChannel.PHONE, AcknowledgementChannel.IN_PERSON})


def create_policy(*, name: str, rules: dict, actor: Actor) -> RefundPolicy:
    name = _require_name(name)
    parsed = parse_rules(rules)
    with service_transaction(actor, reason=f"Refund policy {name} created"):
        if RefundPolicy.objects.filter(name=name).exists():
            raise StateConflict(
                f"A refund policy named {name!r} exists already: edit it to make a new version.",
                code="policy.name_taken",
            )
        policy = RefundPolicy.objects.create(name=name)
        _add_version(policy, parsed, number=1, actor=actor)
    return policy


def revise_policy(
    *, policy: RefundPolicy, rules: dict, actor: Actor, name: str | None = None
) -> RefundPolicyVersion:
    """Version n+1 of `policy`. Earlier versions, and every order sold under them, stay as
    they were."""
    parsed = parse_rules(rules)
    with service_transaction(actor, reason=f"Refund policy {policy.name} revised"):
        policy = RefundPolicy.objects.select_for_update().get(pk=policy.pk)
        if name is not None and _require_name(name) != policy.name:
            if RefundPolicy.objects.filter(name=name).exclude(pk=policy.pk).exists():
                raise StateConflict(
                    f"Another refund policy is named {name!r}.", code="policy.name_taken"
                )
            policy.name = name
            policy.save()
        latest = policy.versions.order_by("-version").first()
        return _add_version(policy, parsed, number=latest.version + 1, actor=actor)


def _add_version(policy, parsed, *, number: int, actor: Actor) -> RefundPolicyVersion:
    text = policy_text(parsed)
    return RefundPolicyVersion.objects.create(
        policy=policy,
        version=number,
        rules=parsed.as_dict(),
        text=text,
        text_sha256=text_hash(text),
        created_by_label=actor.label,
    )


def _require_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("A refund policy needs a name.", code="policy.name_required")
    return name


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def versions_of(order: Order) -> list[RefundPolicyVersion]:
    """The distinct policy versions the order's items were sold under, in item order."""
    versions: dict[int, RefundPolicyVersion] = {}
    for item in order.items.all():
        version = item.refund_policy_version
        if version is not None:
            versions.setdefault(version.pk, version)
    return list(versions.values())


def unacknowledged_versions(order: Order) -> list[RefundPolicyVersion]:
    """Versions whose terms must be accepted before this order is charged, and are not."""
    if order.kind not in PURCHASE_KINDS:
        return []
    accepted = {ack.policy_version_id for ack in order.acknowledgements.all()}
    return [
        version
        for version in versions_of(order)
        if version.rules.get("acknowledgement_required") and version.pk not in accepted
    ]


def require_acknowledged(order: Order) -> None:
    """Refuse to charge a purchase whose refund terms require acceptance the patient has not
    given (the order must be read under its lock by the caller)."""
    missing = unacknowledged_versions(order)
    if missing:
        names = ", ".join(
            f"{version.policy.name} (version {version.version})" for version in missing
        )
        raise StateConflict(
            f"The patient has not accepted the refund terms of {order.number}: {names}. Ask "
            "them to accept the terms in the portal before paying, or read the terms to them "
            "and record their acceptance (phone or in person), then charge again.",
            code="payment.policy_not_acknowledged",
        )


def acknowledge_order(
    *,
    order: Order,
    channel: str,
    actor: Actor,
    text_sha256: str | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
) -> list[PolicyAcknowledgement]:
    """Record the patient's acceptance of every policy version the order was sold under.

    `text_sha256`, when the door showed the terms itself (the portal), must be the hash of the
    text it showed: terms revised meanwhile are refused rather than accepted unseen.
    """
    if channel not in AcknowledgementChannel.values:
        raise InvalidInput(
            f"channel must be one of: {', '.join(AcknowledgementChannel.values)}.",
            code="acknowledgement.invalid_channel",
        )
    with service_transaction(actor, reason=f"Refund terms accepted ({channel})"):
        order = lock_order(order.pk)
        versions = versions_of(order)
        if not versions:
            raise StateConflict(
                f"{order.number} was not sold under a refund policy: there is nothing to accept.",
                code="acknowledgement.no_policy",
            )
        if text_sha256 is not None and text_sha256 != combined_hash(versions):
            raise StateConflict(
                "The refund terms changed while the page was open. Read them again and accept "
                "the terms shown now.",
                code="acknowledgement.terms_changed",
            )
        accepted = set(order.acknowledgements.values_list("policy_version_id", flat=True))
        created = []
        for version in versions:
            if version.pk in accepted:
                continue
            created.append(
                PolicyAcknowledgement.objects.create(
                    order=order,
                    patient_id=order.patient_id,
                    policy_version=version,
                    text_sha256=version.text_sha256,
                    channel=channel,
                    recorded_by_label=actor.label,
                    ip_address=ip_address,
                    user_agent=(user_agent or "")[:300],
                )
            )
    return created


def combined_hash(versions: list[RefundPolicyVersion]) -> str:
    """One hash over the terms of all `versions`, as a page showing them together shows them."""
    return text_hash("\n\n".join(version.text for version in versions))
