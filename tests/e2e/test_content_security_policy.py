"""The Content-Security-Policy holds on every kind of page staff open (issue 12, item 3): the
admin, an order page with its tools, and both API docs render and run with no script or style
the policy refuses, and nothing is fetched from outside the app."""

import pytest

from tests.factories import make_order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def _watch(page) -> tuple[list[str], list[str]]:
    refusals, outside = [], []
    page.on(
        "console",
        lambda message: (
            refusals.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.on(
        "request",
        lambda request: (
            outside.append(request.url)
            if not request.url.startswith(("http://localhost", "data:", "blob:"))
            else None
        ),
    )
    return refusals, outside


def test_staff_pages_run_under_the_policy(page, live_server, log_in, cs_user):
    order = make_order()
    refusals, outside = _watch(page)
    log_in(page, cs_user)
    for path in ["/admin/", f"/admin/orders/order/{order.pk}/change/", "/admin/orders/order/"]:
        response = page.goto(f"{live_server.url}{path}")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert "camera=()" in response.headers["permissions-policy"]
    assert refusals == []
    assert outside == []


def test_the_api_docs_render_under_the_policy(page, live_server, log_in, cs_user):
    refusals, outside = _watch(page)
    log_in(page, cs_user)
    page.goto(f"{live_server.url}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "EMR billing API" in page.inner_text(".swagger-ui .info .title")
    page.goto(f"{live_server.url}/api/v1/redoc/")
    page.wait_for_selector("h1")
    assert "EMR billing API" in page.inner_text("h1")
    # ReDoc's bundle links its "by Redocly" badge from its CDN; the policy keeps the request
    # from leaving, and that is the only thing it refuses.
    badge = "https://cdn.redoc.ly/"
    assert [text for text in refusals if badge not in text] == []
    assert [url for url in outside if not url.startswith(badge)] == []
