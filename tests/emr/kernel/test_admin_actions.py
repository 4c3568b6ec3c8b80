"""The reasoned admin action reports each record's outcome in a sentence and names the action it
confirms; a run that returns nothing still gets a sentence naming the record and the action."""

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from emr.kernel.admin_actions import reasoned_action
from emr.kernel.errors import StateConflict
from orders.models import Product
from tests.admin_tools import SHOWN
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def _run(product, *, actor, reason):
    if not product.active:
        raise StateConflict(f"{product} is retired.", code="product.retired")
    if product.price_cents > 1000:
        return f"{product} was looked at because {reason.lower()}."
    return None


ACTION = reasoned_action(name="look", description="Look at the product… (nothing moves)", run=_run)


def _post(user, products, data):
    if "confirm" in data:  # confirm what the page just shown asks to confirm
        _, page = _post(user, products, {})
        data = {**data, "shown": SHOWN.search(page.render().content.decode()).group(1)}
    request = RequestFactory().post(
        "/admin/", {"_selected_action": [p.pk for p in products], "action": "look", **data}
    )
    request.user = user
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    response = ACTION(admin.ModelAdmin(Product, admin.site), request, Product.objects.all())
    return request, response


def test_each_record_gets_its_own_sentence(cs_user):
    priced = ProductFactory(name="A panel", price_cents=5000)
    cheap = ProductFactory(name="B swab", price_cents=500)
    retired = ProductFactory(name="C kit", active=False)

    request, _ = _post(cs_user, [priced, cheap, retired], {"confirm": "yes", "reason": "Audit"})

    assert [str(message) for message in get_messages(request)] == [
        f"{priced} was looked at because audit.",
        f"{cheap}: Look at the product done; its history shows what changed.",
        f"{retired}: refused. {retired} is retired.",
    ]


def test_the_confirmation_names_the_action(cs_user):
    _, response = _post(cs_user, [ProductFactory()], {})
    page = response.rendered_content
    assert "“Look at the product” applies to:" in page
    assert 'value="Confirm: Look at the product"' in page
