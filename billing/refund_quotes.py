"""What the refund policy allows now: the quote CS reads before refunding, with its reasons
in sentences, and the limit the refund flow holds staff to (going beyond it needs a reason).

Orders sold under no policy quote everything still refundable, exactly as before policies.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from billing.models import PolicyAcknowledgement, RefundPolicyVersion
from emr.kernel.money import format_cents
from orders.models import Order, OrderItem


@dataclass(frozen=True)
class ItemQuote:
    item: OrderItem
    version: RefundPolicyVersion | None
    allowed_cents: int
    sessions_total: int | None
    sessions_used: int | None
    sentence: str


@dataclass(frozen=True)
class RefundQuote:
    order: Order
    refundable_cents: int  # what the policy allows now, within what can still be refunded
    remaining_cents: int  # what the gateway could still return, policy aside
    governed: bool  # False: no item was sold under a policy, the quote is the remainder
    items: tuple[ItemQuote, ...]
    acknowledgements: tuple[PolicyAcknowledgement, ...]
    explanation: tuple[str, ...] = field(default=())

    @property
    def acknowledged_at(self) -> datetime | None:
        return min((ack.acknowledged_at for ack in self.acknowledgements), default=None)


def quote_refund(order: Order, *, remaining_cents: int, now: datetime | None = None) -> RefundQuote:
    """The policy's answer for `order` at `now`, given what the gateway could still return
    (`remaining_cents`, from the refund flow's assessment). Reads items, packages and
    acknowledgements through `.all()`, so a caller that prefetched them pays no queries; an
    order sold under no policy costs the one read of its items."""
    now = now or timezone.now()
    invoice = getattr(order, "invoice", None)
    remaining = remaining_cents
    currency = order.currency
    items = list(order.items.all())
    if not any(item.refund_policy_version_id for item in items):
        return RefundQuote(
            order=order,
            refundable_cents=remaining,
            remaining_cents=remaining,
            governed=False,
            items=(),
            acknowledgements=(),
            explanation=(
                "No refund policy applies to this order: everything still paid can be refunded "
                f"({format_cents(remaining, currency)}).",
            ),
        )
    acknowledgements = tuple(order.acknowledgements.all())
    purchased_at = (invoice.paid_at if invoice and invoice.paid_at else None) or order.created_at
    quotes = tuple(_item_quote(item, purchased_at, now, currency) for item in items)
    allowed = sum(quote.allowed_cents for quote in quotes)
    refundable = max(0, min(allowed - order.refunded_cents, remaining))
    explanation = [quote.sentence for quote in quotes]
    if order.refunded_cents:
        explanation.append(
            f"{format_cents(order.refunded_cents, currency)} was refunded already, so "
            f"{format_cents(refundable, currency)} remains within the policy."
        )
    if not acknowledgements:
        explanation.append("The patient has no recorded acceptance of these terms.")
    return RefundQuote(
        order=order,
        refundable_cents=refundable,
        remaining_cents=remaining,
        governed=True,
        items=quotes,
        acknowledgements=acknowledgements,
        explanation=tuple(explanation),
    )


def _item_quote(item: OrderItem, purchased_at: datetime, now: datetime, currency) -> ItemQuote:
    version = item.refund_policy_version
    price = format_cents(item.total_cents, currency)
    if version is None:
        return ItemQuote(
            item, None, item.total_cents, None, None, f"{item.description}: no policy, {price}."
        )
    rules = version.rules
    package = getattr(item, "package", None)
    total = package.sessions_total if package else None
    used = len(package.redemptions.all()) if package else None
    usage = f"{total - used} of {total} sessions unused; " if package else ""
    name = f"{item.description} ({version.policy.name}, version {version.version})"
    days = (now - purchased_at).days
    window = rules.get("refund_window_days")
    within = f" within {window} days" if window else ""

    def answer(cents: int, why: str) -> ItemQuote:
        return ItemQuote(
            item,
            version,
            cents,
            total,
            used,
            f"{name}: {usage}{why}: {format_cents(cents, currency)}.",
        )

    if rules.get("non_refundable_after") == "purchase":
        return answer(0, "the policy makes it non-refundable once booked")
    if used and rules.get("non_refundable_after") == "first_use":
        return answer(0, "the policy makes it non-refundable after first use")
    if window and days > window:
        return answer(0, f"bought {days} days ago, past the policy's {window}-day refund window")
    if package and package.expires_at and now >= package.expires_at:
        return answer(0, f"the package expired on {package.expires_at:%d %b %Y}")
    if not used:
        if rules.get("full_refund_if_unused", True):
            return answer(item.total_cents, f"nothing used, the policy refunds in full{within}")
        return answer(0, "the policy gives no refund")
    if rules.get("partial_refunds") == "pro_rata_unused" and total:
        cents = item.total_cents * (total - used) // total
        return answer(cents, f"the policy refunds unused sessions pro rata{within}")
    return answer(0, "the policy allows no partial refunds")
