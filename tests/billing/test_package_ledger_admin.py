"""CS read a package's usage log where they work: on the order page and on the patient page
(every session: when, provider, appointment, chart note, who recorded it), and the refund page
shows the refund policy's quote above the checklist."""

import re

import pytest
from django.urls import reverse

from tests.factories import PatientFactory
from tests.fixtures.packages import paid_package, redeem

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    assert response.status_code == 200
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


@pytest.fixture
def used_package(gateways):
    package = paid_package(PatientFactory())
    redeem(package, provider="Dr. Lee", note="Chart: treated left cheek")
    redeem(package, provider="Nurse Patel", note="Chart: follow-up")
    return package


def _ledger(page: str) -> str:
    return page[page.index("Session packages") :]


@pytest.mark.parametrize(
    "where",
    [
        lambda package: reverse("admin:orders_order_change", args=[package.order_item.order_id]),
        lambda package: reverse("admin:emr_patient_change", args=[package.patient_id]),
    ],
    ids=["order page", "patient page"],
)
def test_cs_read_the_package_ledger(used_package, cs_user, admin_client_for, where):
    page = _text(admin_client_for(cs_user).get(where(used_package)))

    ledger = _ledger(page)
    assert "Six facials" in ledger and used_package.order_item.order.number in ledger
    assert "2 of 6 sessions used, 4 left." in ledger
    assert f"expires {used_package.expires_at:%Y-%m-%d}" in ledger
    for fact in ("Dr. Lee", "Nurse Patel", "APT-77", "Chart: treated left cheek", "front-desk"):
        assert fact in ledger


def test_a_patient_without_packages_says_so(cs_user, admin_client_for):
    patient = PatientFactory()
    page = _text(
        admin_client_for(cs_user).get(reverse("admin:emr_patient_change", args=[patient.pk]))
    )
    assert "Session packages No session packages." in page


def test_the_refund_page_shows_the_quote_above_the_checklist(
    used_package, cs_user, admin_client_for
):
    order = used_package.order_item.order
    response = admin_client_for(cs_user).get(
        reverse("admin:orders_order_tool", args=[order.pk, "refund"])
    )

    html = response.content.decode()
    assert html.index('id="refund-quote"') < html.index('id="preflight"')
    quote = _text(response)
    assert "The refund policy allows $240.00 now, of $360.00 still refundable." in quote
    assert "4 of 6 sessions unused" in quote and "pro rata" in quote
    assert "Refunding more needs an override reason" in quote
    assert "Terms accepted on" in quote and "Phone (attested by staff)" in quote
