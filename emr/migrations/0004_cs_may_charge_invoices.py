from django.db import migrations

from emr.staff_groups import reapply_roles


class Migration(migrations.Migration):
    dependencies = [
        ("emr", "0003_staff_groups_and_sequences"),
        ("billing", "0003_refund_attempts_and_references"),
    ]

    operations = [migrations.RunPython(reapply_roles, migrations.RunPython.noop)]
