"""Products name a refund policy (billing.RefundPolicy) instead of carrying free text.

Each product's old text survives as the additional terms of a policy of its own, so nothing a
clinic wrote is lost; a billing admin then replaces it with rules.
"""

import hashlib

import django.db.models.deletion
from django.db import migrations, models


def text_to_policies(apps, schema_editor):
    Product = apps.get_model("orders", "Product")
    RefundPolicy = apps.get_model("billing", "RefundPolicy")
    RefundPolicyVersion = apps.get_model("billing", "RefundPolicyVersion")
    for product in Product.objects.exclude(legacy_refund_terms=""):
        terms = product.legacy_refund_terms.strip()[:1000]
        policy = RefundPolicy.objects.create(name=f"{product.name} terms (product {product.pk})")
        # As billing.policy_rules.policy_text renders these rules: its defaults, then the terms.
        text = f"Full refund at any time if nothing has been used. No partial refunds. Non-transferable. {terms}"
        RefundPolicyVersion.objects.create(
            policy=policy,
            version=1,
            rules={
                "refund_window_days": None,
                "full_refund_if_unused": True,
                "partial_refunds": "none",
                "non_refundable_after": None,
                "package_expires_days": None,
                "transferable": False,
                "cancel_notice_days": None,
                "acknowledgement_required": False,
                "additional_terms": terms,
            },
            text=text,
            text_sha256=hashlib.sha256(text.encode()).hexdigest(),
            created_by_label="system:migration",
        )
        Product.objects.filter(pk=product.pk).update(refund_policy=policy)


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0007_refund_policies_packages"),
        ("orders", "0004_history_versions_index"),
    ]

    operations = [
        migrations.RenameField("product", "refund_policy", "legacy_refund_terms"),
        migrations.RenameField("historicalproduct", "refund_policy", "legacy_refund_terms"),
        migrations.AddField(
            model_name="product",
            name="refund_policy",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="products", to="billing.refundpolicy"),
        ),
        migrations.AddField(
            model_name="historicalproduct",
            name="refund_policy",
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name="+", to="billing.refundpolicy"),
        ),
        migrations.RunPython(text_to_policies, migrations.RunPython.noop),
        migrations.RemoveField("product", "legacy_refund_terms"),
        migrations.RemoveField("historicalproduct", "legacy_refund_terms"),
        migrations.AddField(
            model_name="historicalorderitem",
            name="refund_policy_version",
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name="+", to="billing.refundpolicyversion"),
        ),
        migrations.AddField(
            model_name="historicalproduct",
            name="sessions",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="orderitem",
            name="refund_policy_version",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="billing.refundpolicyversion"),
        ),
        migrations.AddField(
            model_name="product",
            name="sessions",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
    ]
