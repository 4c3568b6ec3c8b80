from django import template

from emr.kernel.money import format_cents

register = template.Library()


@register.filter
def cents(value, currency="usd"):
    """{{ amount_cents|cents:currency }} -> "$12.34"."""
    return format_cents(int(value or 0), currency or "usd")
