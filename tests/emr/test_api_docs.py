"""The API docs work offline: Swagger UI and ReDoc come from the app's own static files."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

pytestmark = pytest.mark.django_db

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+\.(?:js|css|png))["']""")


@pytest.fixture
def staff_browser(cs_user):
    client = Client()
    client.force_login(cs_user)
    return client


@pytest.mark.parametrize("page", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_the_docs_pages_load_their_assets_from_the_app(staff_browser, page, settings):
    response = staff_browser.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assets = ASSET.findall(html)
    assert assets, f"{page} references no script or stylesheet"
    for asset in assets:
        assert asset.startswith(settings.STATIC_URL) or asset.startswith(f"/{settings.STATIC_URL}")
        path = asset.split(settings.STATIC_URL, 1)[1]
        assert finders.find(path), f"{asset} is not among the app's static files"
    assert "cdn" not in html.lower()
