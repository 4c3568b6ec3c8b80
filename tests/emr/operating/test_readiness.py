"""/healthz and /readyz, against a real gunicorn whose PostgreSQL and Redis connections run
through proxies the test cuts and restores (the shared servers keep running for everyone else).
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from urllib.parse import quote, urlsplit

import pytest
import requests
from django.conf import settings
from django.utils import timezone

from emr import operations
from emr.workflows.models import DispatchStatus, WorkflowEvent
from tests.factories import make_order
from tests.fixtures.servers import PROJECT_ROOT, free_port, run_server
from tests.fixtures.tcp_proxy import TcpProxy

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (set REDIS_URL)"),
]

GUNICORN = str(PROJECT_ROOT / ".venv" / "bin" / "gunicorn")
OUTBOX_THRESHOLD = 600


@pytest.fixture
def proxies():
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")
    redis = urlsplit(os.environ["REDIS_URL"])
    db_target = (database.get("HOST") or "127.0.0.1", int(database.get("PORT") or 5432))
    with TcpProxy(db_target) as db_proxy, TcpProxy((redis.hostname, redis.port or 6379)) as rd:
        yield db_proxy, rd


@pytest.fixture
def web(proxies):
    """gunicorn (two workers) on the test database and Redis, each through its proxy."""
    db_proxy, redis_proxy = proxies
    database = settings.DATABASES["default"]
    user = quote(database.get("USER") or "", safe="")
    password = quote(database.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@"
    redis = urlsplit(os.environ["REDIS_URL"])
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{credentials}127.0.0.1:{db_proxy.port}/{database['NAME']}",
        "REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}{redis.path}",
        "READYZ_OUTBOX_MAX_LAG_SECONDS": str(OUTBOX_THRESHOLD),
        "DATABASE_CONNECT_TIMEOUT": "2",
    }
    argv = [GUNICORN, "emr.wsgi:application", f"--bind=127.0.0.1:{port}", "--workers=2"]
    argv.append("--graceful-timeout=1")
    with run_server(argv, port, env=env, startup_timeout=30):
        yield f"http://127.0.0.1:{port}"


def ready_state(base: str, expected: int) -> requests.Response:
    """/readyz once it answers `expected` (the pulled plug takes a moment to be noticed)."""
    deadline = time.monotonic() + 20
    while True:
        answer = requests.get(f"{base}/readyz", timeout=10)
        if answer.status_code == expected or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def failing(answer: requests.Response) -> set[str]:
    return {name for name, check in answer.json()["checks"].items() if not check["ok"]}


def test_readyz_follows_postgresql_and_redis_and_reports_outbox_lag(web, proxies):
    db_proxy, redis_proxy = proxies
    operations.record_beat_heartbeat()
    order = make_order()
    waiting = WorkflowEvent.objects.create(
        event_type="order.updated",
        subject=order,
        subject_key=f"order:{order.pk}",
        occurred_at=timezone.now() - timedelta(seconds=90),
    )

    answer = ready_state(web, 200)
    assert answer.status_code == 200, answer.text
    checks = answer.json()["checks"]
    assert answer.json()["status"] == "ready"
    assert checks["outbox_lag"]["ok"] and checks["outbox_lag"]["threshold"] == OUTBOX_THRESHOLD
    assert checks["outbox_lag"]["value"] >= 90
    backlog = WorkflowEvent.objects.filter(dispatch_status=DispatchStatus.PENDING).count()
    assert checks["outbox_lag"]["message"].startswith(f"{backlog} event(s) waiting")
    assert checks["migrations"] == {
        "ok": True,
        "message": "Every migration is applied.",
        "value": 0,
        "threshold": 0,
    }

    db_proxy.cut()
    answer = ready_state(web, 503)
    assert answer.status_code == 503
    assert {"database", "outbox_lag", "stuck_gateway_attempts"} <= failing(answer)
    assert "broker" not in failing(answer)
    # Liveness does not depend on the database: no orchestrator restarts every web process.
    assert requests.get(f"{web}/healthz", timeout=5).json() == {"status": "ok"}
    db_proxy.restore()
    assert ready_state(web, 200).status_code == 200

    redis_proxy.cut()
    answer = ready_state(web, 503)
    assert failing(answer) == {"broker", "beat"}
    # Counts and sentences only: no host, port, driver or exception text for the public.
    assert not any(word in answer.text for word in ("127.0.0.1", "redis://", "Error", "psycopg"))
    redis_proxy.restore()
    assert ready_state(web, 200).status_code == 200

    waiting.occurred_at = timezone.now() - timedelta(seconds=OUTBOX_THRESHOLD + 60)
    waiting.save()
    answer = ready_state(web, 503)
    assert failing(answer) == {"outbox_lag"}
    assert answer.json()["checks"]["outbox_lag"]["value"] > OUTBOX_THRESHOLD
