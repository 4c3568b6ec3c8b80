"""The clinic's staff groups and what each may do. The data migration applies this table, and
`seed_demo` re-applies it, so the table is the one place roles are defined."""

CS = "CS"
BILLING_ADMIN = "Billing admin"
MEDICAL_OPS = "Medical ops"

_VIEW_ALL = [
    "emr.view_patient",
    "emr.view_intakeresponse",
    "emr.view_prescription",
    "orders.view_product",
    "orders.view_order",
    "orders.view_orderitem",
    "billing.view_invoice",
    "billing.view_payment",
    "billing.view_paymentmethod",
    "billing.view_gatewaysettings",
    "subscriptions.view_plan",
    "subscriptions.view_subscription",
]

_CS = [
    *_VIEW_ALL,
    "emr.add_patient",
    "emr.change_patient",
    "orders.add_order",
    "orders.change_order_status",
    "orders.refund_order",
    "billing.add_paymentmethod",
    "subscriptions.change_subscription",
]

GROUP_PERMISSIONS = {
    CS: _CS,
    BILLING_ADMIN: [
        *_CS,
        "orders.add_product",
        "orders.change_product",
        "subscriptions.add_plan",
        "subscriptions.change_plan",
        "subscriptions.add_subscription",
        "subscriptions.switch_plan",
        "subscriptions.override_recovery_balance",
        "billing.change_gatewaysettings",
    ],
    MEDICAL_OPS: [
        *_VIEW_ALL,
        "emr.change_intakeresponse",
        "emr.add_prescription",
    ],
}


def apply_group_permissions(group_model, permission_model) -> None:
    for group_name, codes in GROUP_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=group_name)
        permissions = []
        for code in codes:
            app_label, codename = code.split(".")
            permissions.append(
                permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(permissions)
