"""Factories for test data. Orders come from the order service, as in production, so every
order a test sees has its invoice, numbers and history."""

import factory
from django.contrib.auth.models import Group, User
from django.utils import timezone

from emr.kernel.actors import Actor, Door
from emr.models import Patient
from orders.models import Product, ProductKind
from orders.services import OrderLine, create_order
from subscriptions.models import Plan, Subscription
from subscriptions.states import BillingInterval


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@clinic.test")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "test-pass-123")

    @factory.post_generation
    def groups(self, create, names, **kwargs):
        if create and names:
            self.groups.set(Group.objects.filter(name__in=names))
        self.save()


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.Sequence(lambda n: f"patient{n}@example.test")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    name = factory.Sequence(lambda n: f"Consultation {n}")
    kind = ProductKind.SERVICE
    price_cents = 5000


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan

    name = factory.Sequence(lambda n: f"Monthly plan {n}")
    product = factory.SubFactory(ProductFactory, kind=ProductKind.MEMBERSHIP)
    price_cents = 9900
    interval = BillingInterval.MONTH


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    patient = factory.SubFactory(PatientFactory)
    plan = factory.SubFactory(PlanFactory)
    started_at = factory.LazyFunction(timezone.now)


def make_order(*, patient=None, products=None, quantities=None, actor=None):
    patient = patient or PatientFactory()
    products = products or [ProductFactory()]
    quantities = quantities or [1] * len(products)
    return create_order(
        patient=patient,
        lines=[OrderLine(product, qty) for product, qty in zip(products, quantities, strict=True)],
        actor=actor or Actor.system("tests", door=Door.SHELL),
    )
