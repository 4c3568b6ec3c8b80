"""Money is integer cents; this is the one place it becomes text."""

SYMBOLS = {"usd": "$", "cad": "CA$", "eur": "€", "gbp": "£"}


def format_cents(cents: int, currency: str = "usd") -> str:
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    symbol = SYMBOLS.get(currency.lower())
    amount = f"{whole:,}.{fraction:02d}"
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency.upper()}"


def money_column(field: str, description: str):
    """An admin list column showing `field` (cents) formatted in the row's currency."""

    def column(obj) -> str:
        return format_cents(getattr(obj, field), obj.currency)

    column.short_description = description
    column.admin_order_field = field
    return column
