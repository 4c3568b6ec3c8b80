from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def in_words(value: timedelta | None) -> str:
    """{{ cooloff|in_words }} -> "15 minutes", "1 hour 30 minutes"."""
    if not value:
        return "a while"
    minutes = round(value.total_seconds() / 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours} hour{'s' if hours != 1 else ''}"] if hours else []
    if minutes or not parts:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)
