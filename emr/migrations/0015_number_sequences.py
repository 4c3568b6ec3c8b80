"""Each number prefix draws from a PostgreSQL sequence (emr.kernel.numbering), started after
the last value its NumberSequence row reached; other databases keep using the rows."""

from django.db import migrations

PREFIXES = ("ORD", "INV", "ESC")  # emr.kernel.numbering.PREFIXES when this was written


def create_sequences(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    rows = apps.get_model("emr", "NumberSequence").objects
    for prefix in PREFIXES:
        row = rows.filter(prefix=prefix).first()
        start = (row.last_value if row else 0) + 1
        schema_editor.execute(
            f"CREATE SEQUENCE IF NOT EXISTS emr_number_{prefix.lower()} START WITH {int(start)}"
        )


def drop_sequences(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for prefix in PREFIXES:
        schema_editor.execute(f"DROP SEQUENCE IF EXISTS emr_number_{prefix.lower()}")


class Migration(migrations.Migration):
    dependencies = [("emr", "0014_communication_log_and_dispute_permissions")]

    operations = [migrations.RunPython(create_sequences, drop_sequences)]
