from django.db import migrations

from emr.staff_groups import reapply_roles


class Migration(migrations.Migration):
    dependencies = [
        ("emr", "0008_history_versions_index"),
        ("billing", "0007_refund_policies_packages"),
        ("orders", "0005_refund_policies_and_sessions"),
    ]

    operations = [migrations.RunPython(reapply_roles, migrations.RunPython.noop)]
