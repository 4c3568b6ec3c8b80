from django.db import migrations

from emr.staff_groups import reapply_roles


class Migration(migrations.Migration):
    dependencies = [
        ("emr", "0011_signed_documents"),
        ("orders", "0006_product_required_documents"),
    ]

    operations = [migrations.RunPython(reapply_roles, migrations.RunPython.noop)]
