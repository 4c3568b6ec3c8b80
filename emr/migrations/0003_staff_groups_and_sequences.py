from django.db import migrations

from emr.staff_groups import reapply_roles


def create_number_sequences(apps, schema_editor):
    sequence = apps.get_model("emr", "NumberSequence")
    for prefix in ("ORD", "INV"):
        sequence.objects.get_or_create(prefix=prefix)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("emr", "0002_initial"),
        ("orders", "0002_initial"),
        ("billing", "0002_initial"),
        ("subscriptions", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(reapply_roles, migrations.RunPython.noop),
        migrations.RunPython(create_number_sequences, migrations.RunPython.noop),
    ]
