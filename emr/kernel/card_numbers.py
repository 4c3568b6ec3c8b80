"""Card numbers never kept: the server should never see one (PCI SAQ A), and when a gateway or a
partner echoes one back in an error, it is cut out before anything stores, logs, emits or
returns the message."""

import re

CARD_NUMBER_REMOVED = "[card number removed]"

# 13 to 19 digits, optionally grouped by single spaces or dashes, as people and gateways write
# them; the Luhn check keeps order numbers, timestamps and amounts.
_DIGIT_RUN = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")


def is_card_number(text: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    return 13 <= len(digits) <= 19 and digits.isdigit() and _luhn_valid(digits)


def scrub_card_numbers(text: str) -> str:
    """`text` with every card-number-like digit run replaced."""
    if not text:
        return text
    return _DIGIT_RUN.sub(
        lambda match: CARD_NUMBER_REMOVED if is_card_number(match.group()) else match.group(),
        text,
    )


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0
