"""Stable, unique, human-facing numbers: ORD-000123, INV-000123."""

from django.db import models, transaction


class NumberSequence(models.Model):
    prefix = models.CharField(max_length=8, primary_key=True)
    last_value = models.BigIntegerField(default=0)

    class Meta:
        app_label = "emr"

    def __str__(self) -> str:
        return f"{self.prefix} at {self.last_value}"


def next_number(prefix: str) -> str:
    """The next number for `prefix`, taken under a row lock so concurrent writers never collide."""
    with transaction.atomic():
        sequence, _ = NumberSequence.objects.select_for_update().get_or_create(prefix=prefix)
        sequence.last_value += 1
        sequence.save(update_fields=["last_value"])
    return f"{prefix}-{sequence.last_value:06d}"
