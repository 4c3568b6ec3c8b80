"""The clinic's staff groups and what each may do: the one place roles are defined.

Every change to this table ships a migration that re-applies it (see emr/migrations), so
existing databases and fresh ones end with the same roles.
"""

from django.contrib.auth.management import create_permissions

CS = "CS"
BILLING_ADMIN = "Billing admin"
MEDICAL_OPS = "Medical ops"

_VIEW_ALL = [
    "emr.view_patient",
    "emr.view_intakeresponse",
    "emr.view_prescription",
    # Consents, disclaimers and payment terms, and what each patient signed.
    "emr.view_documenttemplate",
    "emr.view_documentversion",
    "emr.view_signeddocument",
    # The communication log: what the clinic sent a patient, and when they opened it.
    "emr.view_sentmessage",
    "orders.view_product",
    "orders.view_order",
    "orders.view_orderitem",
    "billing.view_invoice",
    "billing.view_payment",
    "billing.view_paymentmethod",
    "billing.view_gatewaysettings",
    "billing.view_refundpolicy",
    "billing.view_refundpolicyversion",
    "billing.view_policyacknowledgement",
    "billing.view_sessionpackage",
    "billing.view_sessionredemption",
    "subscriptions.view_plan",
    "subscriptions.view_subscription",
    "beluga.view_belugavisit",
    "beluga.view_belugalog",
    "beluga.view_belugamessage",
    "beluga.view_belugawebhookevent",
    "pharmacy.view_pharmacyorder",
    "pharmacy.view_productpharmacyroute",
    "pharmacy.view_fulfilmentcheck",
    "pharmacy.view_pharmacywebhookevent",
]

_CS = [
    *_VIEW_ALL,
    "emr.add_patient",
    "emr.change_patient",
    "orders.add_order",
    "orders.change_order_status",
    "orders.refund_order",
    "billing.add_paymentmethod",
    "billing.add_payment",
    # Acceptance of the refund terms given by phone or in person, attested by CS.
    "billing.add_policyacknowledgement",
    "billing.add_sessionredemption",
    "subscriptions.change_subscription",
    "beluga.cancel_belugavisit",
    "beluga.submit_belugavisit",
    "pharmacy.void_pharmacyorder",
    "pharmacy.submit_pharmacyorder",
    "pharmacy.record_fulfilment_check",
    "workflows.view_workflowevent",
    "workflows.view_workflowrun",
    "support.add_escalation",
    "support.view_escalation",
    # CS answer "why is my payment disputed?"; billing admins act on disputes.
    "billing.view_dispute",
]

GROUP_PERMISSIONS = {
    CS: _CS,
    BILLING_ADMIN: [
        *_CS,
        "orders.add_product",
        "orders.change_product",
        "billing.add_refundpolicy",
        "billing.change_refundpolicy",
        # Documents patients sign: a new one, or a new version of one (never an edit).
        "emr.add_documenttemplate",
        "emr.change_documenttemplate",
        "subscriptions.add_plan",
        "subscriptions.change_plan",
        "subscriptions.add_subscription",
        "subscriptions.switch_plan",
        "subscriptions.override_recovery_balance",
        "billing.change_gatewaysettings",
        "pharmacy.add_productpharmacyroute",
        "pharmacy.change_productpharmacyroute",
        "pharmacy.delete_productpharmacyroute",
        "workflows.view_workflow",
        "workflows.add_workflow",
        "workflows.change_workflow",
        "workflows.delete_workflow",
        "workflows.change_workflowrun",
        "support.resolve_billing_escalation",
        # No fulfilment group yet: billing/admin operations resolve fulfilment escalations.
        "support.resolve_fulfilment_escalation",
        # What patients read before changing a subscription in the portal.
        "portal.view_consequencesacknowledgement",
        # What staff were shown when they confirmed a change, and the audit chain's digests.
        "audit.view_decisionrecord",
        "audit.view_chaindigest",
        # Chargebacks: NMI's entered by hand, evidence packets built and submitted.
        "billing.add_dispute",
        "billing.submit_evidence",
    ],
    MEDICAL_OPS: [
        *_VIEW_ALL,
        "emr.change_intakeresponse",
        "emr.add_prescription",
        # Providers' sessions are redeemed by the clinical side as well as by CS.
        "billing.add_sessionredemption",
        "support.view_escalation",
        "support.resolve_medical_escalation",
    ],
}


def apply_group_permissions(group_model, permission_model) -> None:
    for group_name, codes in GROUP_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=group_name)
        permissions = []
        for code in codes:
            app_label, codename = code.split(".")
            found = permission_model.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            # An earlier migration runs this with today's table, before later apps' permissions
            # exist; the migration that added those codes re-applies the table.
            if found is not None:
                permissions.append(found)
        group.permissions.set(permissions)


def reapply_roles(apps, schema_editor) -> None:
    """The RunPython body of every migration that changes this table.

    Permissions are normally created after all migrations ran; the groups need them now, so
    they are created first for every app migrated so far.
    """
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    apply_group_permissions(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))
