from django.db import migrations

from emr.staff_groups import reapply_roles


class Migration(migrations.Migration):
    dependencies = [
        ("emr", "0009_refund_policy_permissions"),
        ("audit", "0002_chain_and_decisions"),
    ]

    operations = [migrations.RunPython(reapply_roles, migrations.RunPython.noop)]
