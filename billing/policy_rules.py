"""A refund policy as data: the rules a clinic sets, checked, and the text patients read.

The text is generated from the rules and nowhere else, so what a patient accepted and what the
refund quote applies can never disagree.
"""

from dataclasses import asdict, dataclass
from typing import Any

from emr.kernel.errors import InvalidInput

NON_REFUNDABLE_AFTER = ("purchase", "first_use")
PARTIAL_REFUNDS = ("none", "pro_rata_unused")
MAX_DAYS = 3650
MAX_TERMS = 1000


@dataclass(frozen=True)
class PolicyRules:
    # Refunds are considered only within this many days of purchase (None: no limit).
    refund_window_days: int | None = None
    # Everything back while nothing was used (within the window).
    full_refund_if_unused: bool = True
    # After first use: nothing ("none"), or the unused sessions' share of the price.
    partial_refunds: str = "none"
    # Nothing is refunded once purchased, or once first used.
    non_refundable_after: str | None = None
    package_expires_days: int | None = None
    transferable: bool = False
    cancel_notice_days: int | None = None
    acknowledgement_required: bool = False
    # Clinic wording kept beside the generated terms (say, terms written before policies were data).
    additional_terms: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_FIELDS = PolicyRules.__dataclass_fields__


def parse_rules(raw: Any) -> PolicyRules:
    """The rules from an API body or a stored version; bad input names the rule at fault."""
    if not isinstance(raw, dict):
        raise InvalidInput("rules must be an object of named rules.", code="policy.invalid_rules")
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise InvalidInput(
            f"Unknown refund-policy rule(s): {', '.join(unknown)}. Known rules: "
            f"{', '.join(_FIELDS)}.",
            code="policy.unknown_rule",
        )
    for name in ("refund_window_days", "package_expires_days", "cancel_notice_days"):
        _check_days(name, raw.get(name))
    for name in ("full_refund_if_unused", "transferable", "acknowledgement_required"):
        if name in raw and not isinstance(raw[name], bool):
            raise InvalidInput(f"{name} must be true or false.", code="policy.invalid_rules")
    _check_choice("partial_refunds", raw.get("partial_refunds", "none"), PARTIAL_REFUNDS)
    if raw.get("non_refundable_after") is not None:
        _check_choice("non_refundable_after", raw["non_refundable_after"], NON_REFUNDABLE_AFTER)
    terms = raw.get("additional_terms", "")
    if not isinstance(terms, str) or len(terms) > MAX_TERMS or "\x00" in terms:
        raise InvalidInput(
            f"additional_terms must be text of at most {MAX_TERMS} characters.",
            code="policy.invalid_rules",
        )
    return PolicyRules(**{**raw, "additional_terms": terms.strip()})


def _check_days(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DAYS:
        raise InvalidInput(
            f"{name} must be a whole number of days between 1 and {MAX_DAYS}, or null.",
            code="policy.invalid_rules",
        )


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidInput(
            f"{name} must be one of: {', '.join(choices)}.", code="policy.invalid_rules"
        )


def policy_text(rules: PolicyRules) -> str:
    """The terms in the patient's words, one sentence per rule that says something."""
    sentences = []
    window = rules.refund_window_days
    within = f" within {_days(window)} of purchase" if window else ""
    if rules.non_refundable_after == "purchase":
        sentences.append("This purchase is non-refundable once booked.")
    else:
        if rules.full_refund_if_unused:
            sentences.append(f"Full refund{within or ' at any time'} if nothing has been used.")
        if rules.non_refundable_after == "first_use":
            sentences.append("Non-refundable once the first session or item is used.")
        elif rules.partial_refunds == "pro_rata_unused":
            sentences.append(f"Unused sessions are refunded pro rata{within}.")
        else:
            sentences.append("No partial refunds.")
    if rules.package_expires_days:
        sentences.append(f"Sessions expire {_days(rules.package_expires_days)} after purchase.")
    if not rules.transferable:
        sentences.append("Non-transferable.")
    if rules.cancel_notice_days:
        sentences.append(
            f"Memberships cancel with {_days(rules.cancel_notice_days)}' notice."
            if rules.cancel_notice_days > 1
            else "Memberships cancel with 1 day's notice."
        )
    if rules.acknowledgement_required:
        sentences.append("You accept these terms before paying.")
    if rules.additional_terms:
        sentences.append(rules.additional_terms)
    return " ".join(sentences)


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"
