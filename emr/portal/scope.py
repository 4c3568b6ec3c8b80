"""The signed-in patient's own records, and nothing else.

Every portal lookup by number goes through here. A number that is not the patient's own
answers exactly as a number that does not exist (`NotFound`), so a patient can never learn
whether another patient's order, invoice or subscription exists, let alone see it.
"""

import re

from django.db.models import QuerySet

from billing.models import Invoice, PaymentMethod, SessionPackage
from emr.kernel.errors import NotFound
from emr.models import Patient, SignedDocument
from orders.models import Order
from subscriptions.models import Subscription

NOT_FOUND = "We could not find that in your account. Check the number, or go back to your list."
_SUBSCRIPTION_NUMBER = re.compile(r"SUB-(\d{1,12})")


def subscription_number(subscription: Subscription) -> str:
    return str(subscription)


def own_orders(patient: Patient, queryset: QuerySet[Order] | None = None) -> QuerySet[Order]:
    return _base(queryset, Order).filter(patient=patient)


def own_invoices(patient: Patient, queryset: QuerySet[Invoice] | None = None) -> QuerySet[Invoice]:
    return _base(queryset, Invoice).filter(order__patient=patient)


def own_subscriptions(
    patient: Patient, queryset: QuerySet[Subscription] | None = None
) -> QuerySet[Subscription]:
    return _base(queryset, Subscription).filter(patient=patient)


def own_cards(patient: Patient) -> QuerySet[PaymentMethod]:
    """Saved cards the patient has not removed."""
    return PaymentMethod.objects.filter(patient=patient, removed_at__isnull=True)


def own_packages(
    patient: Patient, queryset: QuerySet[SessionPackage] | None = None
) -> QuerySet[SessionPackage]:
    return _base(queryset, SessionPackage).filter(patient=patient)


# A caller may pass its own queryset (to join or prefetch what its page shows); it is narrowed
# to the patient's records all the same, so it can never widen the scope.


def own_order(patient: Patient, number: str, queryset: QuerySet[Order] | None = None) -> Order:
    return _one(own_orders(patient, queryset), number=number)


def own_invoice(
    patient: Patient, number: str, queryset: QuerySet[Invoice] | None = None
) -> Invoice:
    return _one(own_invoices(patient, queryset), number=number)


def own_subscription(
    patient: Patient, number: str, queryset: QuerySet[Subscription] | None = None
) -> Subscription:
    match = _SUBSCRIPTION_NUMBER.fullmatch(number or "")
    if match is None:
        raise NotFound(NOT_FOUND, code="portal.not_found")
    return _one(own_subscriptions(patient, queryset), pk=int(match[1]))


def own_package(
    patient: Patient, package_id: int, queryset: QuerySet[SessionPackage] | None = None
) -> SessionPackage:
    return _one(own_packages(patient, queryset), pk=package_id)


def own_signed_documents(
    patient: Patient, queryset: QuerySet[SignedDocument] | None = None
) -> QuerySet[SignedDocument]:
    return _base(queryset, SignedDocument).filter(patient=patient)


def own_signed_document(
    patient: Patient, signed_id: int, queryset: QuerySet[SignedDocument] | None = None
) -> SignedDocument:
    return _one(own_signed_documents(patient, queryset), pk=signed_id)


def own_card(patient: Patient, card_id: int) -> PaymentMethod:
    """One of the patient's saved cards (not removed), by id."""
    return _one(own_cards(patient), pk=card_id)


def _base(queryset: QuerySet | None, model) -> QuerySet:
    return model.objects.all() if queryset is None else queryset


def _one(queryset: QuerySet, **lookup):
    found = queryset.filter(**lookup).first()
    if found is None:
        raise NotFound(NOT_FOUND, code="portal.not_found")
    return found
