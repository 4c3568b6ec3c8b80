from django.db import migrations

from emr.staff_groups import reapply_roles


class Migration(migrations.Migration):
    dependencies = [
        ("emr", "0007_support_permissions"),
        ("audit", "0001_initial"),
    ]

    operations = [migrations.RunPython(reapply_roles, migrations.RunPython.noop)]
