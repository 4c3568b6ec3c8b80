from django.db import migrations

from emr.staff_groups import reapply_roles


class Migration(migrations.Migration):
    dependencies = [
        ("emr", "0007_support_permissions"),
        ("billing", "0006_refund_policies_packages"),
        ("orders", "0004_refund_policies_and_sessions"),
    ]

    operations = [migrations.RunPython(reapply_roles, migrations.RunPython.noop)]
