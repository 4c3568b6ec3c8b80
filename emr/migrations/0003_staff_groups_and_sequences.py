from django.contrib.auth.management import create_permissions
from django.db import migrations

from emr.staff_groups import apply_group_permissions


def forwards(apps, schema_editor):
    # Permissions are normally created after all migrations ran; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    apply_group_permissions(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))
    sequence = apps.get_model("emr", "NumberSequence")
    for prefix in ("ORD", "INV"):
        sequence.objects.get_or_create(prefix=prefix)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("emr", "0002_initial"),
        ("orders", "0002_initial"),
        ("billing", "0002_initial"),
        ("subscriptions", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
