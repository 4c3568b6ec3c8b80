"""The patient's session packages in the portal: total, used, left, expiry and every session
used (when, with which provider; never the chart note or what staff typed), the patient's own
only, at a query count that does not grow with the packages or their sessions."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import PatientFactory
from tests.fixtures.packages import paid_package, redeem

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


@pytest.fixture
def bought(gateways, portal_client):
    patient = PatientFactory()
    package = paid_package(patient)
    client = portal_client(patient)
    return patient, package, client


def test_the_ledger_shows_what_was_bought_used_and_left_and_every_session(bought):
    _, package, client = bought
    first = redeem(package, provider="Dr. Lee", at=timezone.now() - timedelta(days=3))
    redeem(package, provider="Nurse Patel", note="Chart: reaction noted, staff only")

    listing = _text(client.get("/patient/packages/"))
    assert "Six facials" in listing and "4 of 6 sessions left · 2 used" in listing
    assert f"Expires {package.expires_at:%-d %b %Y}" in listing

    response = client.get(f"/patient/packages/{package.pk}/")
    assert response.status_code == 200
    page = _text(response)
    assert "Sessions bought 6 Used 2 Left 4" in page
    assert f"Use them by {package.expires_at:%-d %b %Y}" in page
    assert package.order_item.order.number in page
    assert f"{first.redeemed_at:%-d %b %Y, %H:%M}" in page
    assert "Dr. Lee" in page and "Nurse Patel" in page
    html = response.content.decode()
    for internal in ("Chart:", "staff only", "APT-77", "front-desk"):
        assert internal not in html


def test_the_portal_navigation_links_the_packages(bought):
    _, _, client = bought
    html = client.get("/patient/").content.decode()
    assert '<a href="/patient/packages/">Packages</a>' in html


def test_the_order_page_links_its_package(bought):
    _, package, client = bought
    html = client.get(f"/patient/orders/{package.order_item.order.number}/").content.decode()
    assert f'href="/patient/packages/{package.pk}/"' in html


def test_an_expired_package_says_so(bought):
    _, package, client = bought
    package.expires_at = timezone.now() - timedelta(days=1)
    package.save()
    page = _text(client.get(f"/patient/packages/{package.pk}/"))
    assert "Expired" in page and "cannot be booked any more" in page


def test_another_patients_package_answers_404(bought, gateways, portal_client):
    _, package, _ = bought
    stranger = portal_client(PatientFactory())

    response = stranger.get(f"/patient/packages/{package.pk}/")

    assert response.status_code == 404
    assert "Six facials" not in response.content.decode()
    assert "You have no session packages" in stranger.get("/patient/packages/").content.decode()


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


def test_the_package_pages_cost_the_same_queries_at_two_sizes(bought):
    patient, package, client = bought
    redeem(package)
    pages = ["/patient/packages/", f"/patient/packages/{package.pk}/"]
    for url in pages:
        _queries(client, url)  # warm per-process caches
    few = {url: _queries(client, url) for url in pages}

    for n in range(4):
        redeem(package, provider=f"Provider {n}")
    for n in range(3):
        more = paid_package(patient, name=f"Package {n}", sessions=3)
        redeem(more)

    many = {url: _queries(client, url) for url in pages}
    assert many == few
