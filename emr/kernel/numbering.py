"""Stable, unique, human-facing numbers: ORD-000123, INV-000123.

On PostgreSQL each prefix draws from its own database sequence (`emr_number_ord` …, created
by migration emr 0011 from the values reached so far): one `nextval`, which holds no lock, so
concurrent writers neither collide nor wait for each other's commit. A number taken by a
transaction that rolls back is not reused (a gap, never a duplicate). Elsewhere (the SQLite
dev default) the `NumberSequence` row is incremented under its lock, one UPDATE … RETURNING.
"""

from django.db import connection, models

# Every prefix in use; each needs its sequence (a migration) before it is used.
PREFIXES = ("ORD", "INV", "ESC")


class NumberSequence(models.Model):
    prefix = models.CharField(max_length=8, primary_key=True)
    last_value = models.BigIntegerField(default=0)

    class Meta:
        app_label = "emr"

    def __str__(self) -> str:
        return f"{self.prefix} at {self.last_value}"


def sequence_name(prefix: str) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"No number sequence for {prefix!r}: add it to PREFIXES and a migration.")
    return f"emr_number_{prefix.lower()}"


def next_number(prefix: str) -> str:
    """The next number for `prefix`: one statement, unique under any concurrency."""
    name = sequence_name(prefix)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT nextval(%s)", [name])
        else:
            table = NumberSequence._meta.db_table  # our own table's name, never input
            cursor.execute(
                f"INSERT INTO {table} (prefix, last_value) VALUES (%s, 1) "  # noqa: S608
                "ON CONFLICT (prefix) DO UPDATE SET last_value = last_value + 1 "
                "RETURNING last_value",
                [prefix],
            )
        value = cursor.fetchone()[0]
    return f"{prefix}-{value:06d}"
