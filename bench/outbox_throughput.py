"""What the workflow outbox costs on top of a bare Celery task, through the real worker and Redis.

In one run, against one `celery worker` process (solo pool) on its own Redis database:
- baseline: bare task round trips per second (publish -> worker runs a task that does one Redis
  INCR -> the benchmark sees the count), a burst of BASELINE_TASKS;
- outbox: events per second through the whole path (emit in a committed transaction -> on-commit
  dispatch task -> run started -> advance task -> first step logged), a burst of EVENTS, each in
  its own transaction, with one workflow listening;
- their ratio, and the commit-to-first-step latency p50/p95 measured with paced events (one at a
  time, so it is the pipeline's latency rather than the burst's queueing time).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/emr_billing \
    REDIS_URL=redis://127.0.0.1:6379/0 python bench/outbox_throughput.py

It creates and drops its own database and uses Redis database 6 (`BENCH_REDIS_DB`); nothing
else is touched.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emr.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/emr_billing")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

from celery import shared_task  # noqa: E402

EVENTS = int(os.environ.get("BENCH_EVENTS", 300))
BASELINE_TASKS = int(os.environ.get("BENCH_BASELINE_TASKS", 300))
PACED_EVENTS = int(os.environ.get("BENCH_PACED_EVENTS", 40))
WARM_UP = 10
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", 6))
DEADLINE_SECONDS = 120


_redis_clients: dict[str, object] = {}


def _redis(url: str):
    if url not in _redis_clients:
        import redis

        _redis_clients[url] = redis.Redis.from_url(url)
    return _redis_clients[url]


@shared_task(name="bench.ping")
def ping(counter: str) -> None:
    """The bare round trip's task: one INCR, so the benchmark can see that it ran."""
    from django.conf import settings

    _redis(settings.REDIS_URL).incr(counter)  # the worker's REDIS_URL: the benchmark's database


def main() -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from tests.fixtures.celery_worker import running_worker

    database = settings.DATABASES["default"]
    old_name = database["NAME"]
    database.setdefault("TEST", {})["NAME"] = f"bench_outbox_{os.getpid()}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        with (
            tempfile.TemporaryDirectory() as work_dir,
            running_worker(
                work_dir=Path(work_dir),
                redis_db=REDIS_DB,
                extra_args=("--include", "bench.outbox_throughput"),
            ) as worker,
        ):
            report(worker)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def report(worker) -> None:
    order = _setup()
    _emit_burst(order, WARM_UP, worker)
    _ping_burst(WARM_UP, worker)

    tasks_per_second = _ping_burst(BASELINE_TASKS, worker)
    events_per_second = _emit_burst(order, EVENTS, worker)
    latencies = _paced_latencies(order, PACED_EVENTS, worker)

    print(f"outbox throughput, real worker (solo pool) + Redis, {os.cpu_count()} CPUs")
    print(f"  bare Celery task round trip    {tasks_per_second:8.1f} tasks/s  ({BASELINE_TASKS})")
    print(f"  emit -> dispatch -> 1st step   {events_per_second:8.1f} events/s ({EVENTS})")
    print(f"  ratio outbox / bare task       {events_per_second / tasks_per_second:8.2f}")
    print(
        f"  commit -> first step latency   p50 {_percentile(latencies, 50):.1f} ms, "
        f"p95 {_percentile(latencies, 95):.1f} ms ({PACED_EVENTS} paced events)"
    )


def _setup():
    from emr.kernel.actors import Actor
    from emr.models import Patient
    from emr.workflows import services
    from emr.workflows.validation import StepSpec
    from orders.models import Product
    from orders.services import OrderLine, create_order

    actor = Actor.system("bench")
    services.create_workflow(
        name="Bench listener",
        trigger="order.updated",
        steps=[StepSpec("condition", {"path": "order.status", "operator": "exists"})],
        actor=actor,
    )
    patient = Patient.objects.create(
        first_name="Bench", last_name="Patient", email=f"{uuid.uuid4().hex}@bench.example"
    )
    product = Product.objects.create(name="Bench consult", kind="SERVICE", price_cents=5000)
    return create_order(patient=patient, lines=[OrderLine(product, 1)], actor=actor)


def _emit_burst(order, count: int, worker) -> float:
    from emr.workflows.models import RunStatus, WorkflowRun

    done_before = WorkflowRun.objects.filter(status=RunStatus.SUCCEEDED).count()
    started = time.perf_counter()
    for _ in range(count):
        _emit_committed(order)
    _wait(
        lambda: (
            WorkflowRun.objects.filter(status=RunStatus.SUCCEEDED).count() >= done_before + count
        ),
        worker,
    )
    return count / (time.perf_counter() - started)


def _emit_committed(order) -> tuple[int, float]:
    """Emit in its own transaction; returns the event id and the wall time of the commit."""
    from django.db import transaction

    from emr.workflows.outbox import emit

    committed_at: list[float] = []
    with transaction.atomic():
        # Registered before emit's own on-commit enqueue, so it runs first, right at commit.
        transaction.on_commit(lambda: committed_at.append(time.time()))
        event = emit("order.updated", subject=order)
    return event.pk, committed_at[0]


def _ping_burst(count: int, worker) -> float:
    counter = f"bench:{uuid.uuid4().hex}"
    started = time.perf_counter()
    for _ in range(count):
        ping.delay(counter)
    _wait(lambda: int(_redis(worker.broker_url).get(counter) or 0) >= count, worker)
    return count / (time.perf_counter() - started)


def _paced_latencies(order, count: int, worker) -> list[float]:
    from emr.workflows.models import StepLog

    latencies = []
    for _ in range(count):
        event_id, committed_at = _emit_committed(order)
        first_steps = StepLog.objects.filter(run__event_id=event_id, step_number=1)
        _wait(first_steps.exists, worker, tick=0.001)
        latencies.append((first_steps.get().created_at.timestamp() - committed_at) * 1000)
    return latencies


def _wait(condition, worker, *, tick: float = 0.01) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out; worker log:\n{worker.log()}")
        time.sleep(tick)


def _percentile(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


if __name__ == "__main__":
    main()
