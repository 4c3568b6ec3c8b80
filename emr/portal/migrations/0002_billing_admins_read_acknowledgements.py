from django.db import migrations

from emr.staff_groups import reapply_roles


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0001_initial"),
        ("emr", "0007_support_permissions"),
    ]

    operations = [migrations.RunPython(reapply_roles, migrations.RunPython.noop)]
