"""Money is integer cents; this is the one place it becomes text."""

SYMBOLS = {"usd": "$", "cad": "CA$", "eur": "€", "gbp": "£"}


def format_cents(cents: int, currency: str = "usd") -> str:
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    symbol = SYMBOLS.get(currency.lower())
    amount = f"{whole:,}.{fraction:02d}"
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency.upper()}"
