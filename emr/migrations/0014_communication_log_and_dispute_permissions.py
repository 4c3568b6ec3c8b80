from django.db import migrations

from emr.staff_groups import reapply_roles


class Migration(migrations.Migration):
    dependencies = [
        ("emr", "0013_communication_log"),
        ("billing", "0009_disputes_and_card_checks"),
    ]

    operations = [migrations.RunPython(reapply_roles, migrations.RunPython.noop)]
