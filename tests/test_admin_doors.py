"""No admin page rewrites an audited record by hand, for any role.

A record carrying money, a status, consent, or a link between a patient and money changes only
through its services (the tools on its page); its stock change form is read-only for everyone,
superusers included, and nobody adds or deletes such rows by hand. This walks every registered
admin page and inline, so a page added later is held to the same rule.
"""

import pytest
from django.contrib import admin
from django.test import RequestFactory

from emr.staff_groups import BILLING_ADMIN, CS, MEDICAL_OPS
from subscriptions.models import Subscription
from tests.factories import UserFactory

# The records whose link to them ties a patient to money (or to care they pay for).
MONEY_LINKED_MODELS = {
    "emr.patient",
    "billing.paymentmethod",
    "billing.invoice",
    "billing.payment",
    "billing.refundattempt",
    "orders.order",
    "subscriptions.subscription",
    "subscriptions.plan",
}

# Pages that may stay editable, and why. Nothing else may.
EDITABLE_BY_DESIGN: dict[str, str] = {
    "support.escalation": "opened and resolved on its own pages, which call the escalation service",
    # Renewals bill a plan's price, product, interval and financing live (billing_cycle.plan_line,
    # recovery_balance_cents), so those are read-only once a subscription or a switch uses the
    # plan (tests/subscriptions/test_admin_pages.py); what stays editable cannot change what an
    # existing subscriber pays or owes.
    "subscriptions.plan": (
        "billing admins add plans, rename them and retire them (active); a plan a subscription "
        "or a scheduled switch uses keeps its money terms read-only, Plan.save() refuses to "
        "change them whoever calls it, and no plan is ever deleted"
    ),
    "orders.product": (
        "the catalogue: a price, name or policy text only shapes orders placed afterwards (order "
        "lines keep what they were sold at), and what existing orders read from a product (its "
        "kind and its intake, lab and prescription requirements) is read-only once it was "
        "ordered; nobody deletes a product"
    ),
}

APPS = [
    "audit",
    "beluga",
    "billing",
    "emr",
    "orders",
    "pharmacy",
    "subscriptions",
    "support",
    "workflows",
]


def protected_fields(model) -> list[str]:
    """The fields of `model` that carry money, status, consent or a patient-to-money link."""
    names = []
    for field in model._meta.get_fields():
        if not getattr(field, "concrete", False):
            continue
        name = field.name
        related = (
            field.related_model._meta.label_lower
            if field.is_relation and field.related_model
            else ""
        )
        if (
            name.endswith("_cents")
            or name in {"amount", "currency", "status"}
            or name.endswith("_status")
            or "consent" in name
            or "acknowledg" in name
            or related in MONEY_LINKED_MODELS
        ):
            names.append(name)
    return names


def editable_fields(model_admin, request, obj) -> list[str]:
    if not model_admin.has_change_permission(request, obj):
        return []
    form = model_admin.get_form(request, obj, change=True)
    readonly = set(model_admin.get_readonly_fields(request, obj))
    return [name for name in form.base_fields if name not in readonly]


def _role_users():
    return {
        "cs": UserFactory(username="doors-cs", groups=[CS]),
        "billing": UserFactory(username="doors-billing", groups=[BILLING_ADMIN]),
        "medops": UserFactory(username="doors-medops", groups=[MEDICAL_OPS]),
        "superuser": UserFactory(username="doors-root", is_superuser=True, is_staff=True),
    }


def _audited_pages(app_label=None):
    for model, model_admin in admin.site._registry.items():
        if app_label and model._meta.app_label != app_label:
            continue
        if model._meta.label_lower in EDITABLE_BY_DESIGN:
            continue
        if protected_fields(model):
            yield model, model_admin


@pytest.mark.django_db
@pytest.mark.parametrize("app_label", APPS)
def test_no_role_can_edit_add_or_delete_an_audited_record(roles, app_label):
    factory = RequestFactory()
    breaches = []
    for role, user in _role_users().items():
        request = factory.get("/admin/")
        request.user = user
        for model, model_admin in _audited_pages(app_label):
            label = model._meta.label_lower
            if model_admin.has_add_permission(request):
                breaches.append(f"{role} may add {label}")
            if model_admin.has_delete_permission(request, None):
                breaches.append(f"{role} may delete {label}")
            obj = model()  # an unsaved row: the form's fields do not depend on its values
            if fields := editable_fields(model_admin, request, obj):
                breaches.append(f"{role} may edit {label}: {', '.join(fields)}")
            for inline in model_admin.get_inline_instances(request, obj):
                if not protected_fields(inline.model):
                    continue
                inline_label = inline.model._meta.label_lower
                if inline.has_add_permission(request, obj):
                    breaches.append(f"{role} may add {inline_label} inline on {label}")
                if inline.has_delete_permission(request, obj):
                    breaches.append(f"{role} may delete {inline_label} inline on {label}")
                if inline.has_change_permission(request, obj):
                    formset = inline.get_formset(request, obj)
                    readonly = set(inline.get_readonly_fields(request, obj))
                    if editable := [f for f in formset.form.base_fields if f not in readonly]:
                        breaches.append(
                            f"{role} may edit {inline_label} on {label}: {', '.join(editable)}"
                        )
    assert breaches == [], "\n".join(breaches)


def test_history_pages_offer_no_revert(settings):
    assert settings.SIMPLE_HISTORY_REVERT_DISABLED is True


def test_the_walk_finds_the_records_that_carry_money():
    """The rule above is only as good as its walk: it must see the pages that matter."""
    found = {model._meta.label_lower for model, _ in _audited_pages()}
    assert {"orders.order", "billing.payment", "subscriptions.subscription"} <= found


def test_protected_fields_are_the_ones_that_matter():
    assert {"patient", "plan", "status"} <= set(protected_fields(Subscription))
