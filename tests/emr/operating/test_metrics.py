"""/metrics: who may read it, the counters a refund moves, the database's figures, and
counters summed over several processes (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from tests.fixtures.servers import PROJECT_ROOT

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-for-tests"


@pytest.fixture
def scraper(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def scrape() -> dict[tuple[str, frozenset], float]:
        answer = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert answer.status_code == 200
        assert answer["Content-Type"].startswith("text/plain")
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(answer.content.decode())
            for sample in family.samples
        }

    return scrape


def value(samples, name, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_only_staff_and_the_scrapers_token_read_metrics(
    client, settings, admin_client_for, cs_user
):
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert admin_client_for(cs_user).get("/metrics").status_code == 200
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_a_refund_moves_the_counters_and_the_database_figures(scraper, paid_order, cs_user):
    order = paid_order("nmi", 5000)
    before = scraper()
    api = APIClient()
    api.force_authenticate(cs_user)
    answer = api.post(f"/api/v1/orders/{order.pk}/refund/", {"reason": "Asked"}, format="json")
    assert answer.status_code == 201
    after = scraper()

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("emr_gateway_calls_total", gateway="nmi", operation="refund", outcome="succeeded")
    assert moved("emr_gateway_call_seconds_count", gateway="nmi", operation="refund") == 1
    assert moved("emr_http_request_seconds_count", view="order-refund", method="POST") == 1
    assert moved("emr_http_requests_total", view="order-refund", method="POST", status="201") == 1
    assert value(after, "emr_payments", kind="refund", gateway="nmi", status="refunded") == 1
    assert value(after, "emr_payments_cents", kind="refund", gateway="nmi", status="refunded") == (
        5000
    )
    assert value(after, "emr_refund_attempts", gateway="nmi", status="succeeded") == 1
    assert value(after, "emr_pending_gateway_attempts", kind="refund_attempt") == 0
    # The refund emitted its events; nothing dispatches them in this test.
    assert value(after, "emr_outbox_backlog") >= 2


def test_counters_add_up_across_processes(scraper, tmp_path, monkeypatch):
    count_one_webhook = (
        "from emr.kernel import metrics; metrics.WEBHOOKS.labels('nmi', 'processed').inc()"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run(
            [sys.executable, "-c", count_one_webhook], env=env, cwd=PROJECT_ROOT, check=True
        )
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = scraper()
    assert value(samples, "emr_webhooks_total", source="nmi", outcome="processed") == 2
