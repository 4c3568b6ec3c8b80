from django.db import migrations

from emr.staff_groups import reapply_roles


class Migration(migrations.Migration):
    dependencies = [
        ("emr", "0005_beluga_and_pharmacy_permissions"),
        ("workflows", "0002_automations"),
    ]

    operations = [migrations.RunPython(reapply_roles, migrations.RunPython.noop)]
