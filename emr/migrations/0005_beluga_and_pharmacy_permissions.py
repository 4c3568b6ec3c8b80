from django.db import migrations

from emr.staff_groups import reapply_roles


class Migration(migrations.Migration):
    dependencies = [
        ("emr", "0004_cs_may_charge_invoices"),
        ("beluga", "0001_initial"),
        ("pharmacy", "0001_initial"),
    ]

    operations = [migrations.RunPython(reapply_roles, migrations.RunPython.noop)]
