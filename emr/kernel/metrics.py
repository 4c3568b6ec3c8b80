"""Every counter and histogram the processes keep, in one place everything may import.

What the database knows (payments and refund attempts by gateway and status, the outbox
backlog and lag, gateway attempts left pending) is not counted here: `/metrics` reads it at
scrape time (emr/operations.py), so it is right whichever process did the work and survives
restarts. What only a process sees (how long a gateway call took, a request's latency, a
task's outcome, a webhook's answer, a renewal's result) is counted here.

Several processes (gunicorn workers, Celery workers) count at once: with
`PROMETHEUS_MULTIPROC_DIR` set, prometheus-client keeps each process's values in a file there
and `/metrics` adds them up. Files are named by host name and pid, so containers that share the
directory (docker-compose.yml) never write into each other's files, though their pids repeat.
"""

import os
import socket

from prometheus_client import Counter, Histogram, values

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    values.ValueClass = values.MultiProcessValue(
        process_identifier=lambda: f"{socket.gethostname()}-{os.getpid()}"
    )

# Gateways answer in tens of milliseconds to tens of seconds (GATEWAY_TIMEOUT_SECONDS).
_GATEWAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

GATEWAY_CALLS = Counter(
    "emr_gateway_calls",
    "Calls to a payment gateway, by operation and outcome (a result or an error code).",
    ["gateway", "operation", "outcome"],
)
GATEWAY_SECONDS = Histogram(
    "emr_gateway_call_seconds",
    "How long a payment gateway call took.",
    ["gateway", "operation"],
    buckets=_GATEWAY_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "emr_http_requests", "Requests answered, by view and status.", ["view", "method", "status"]
)
HTTP_SECONDS = Histogram(
    "emr_http_request_seconds",
    "Request latency by resolved view name.",
    ["view", "method"],
    buckets=_REQUEST_BUCKETS,
)
TASKS = Counter("emr_celery_tasks", "Celery tasks run, by outcome.", ["task", "outcome"])
TASK_SECONDS = Histogram(
    "emr_celery_task_seconds", "How long a Celery task ran.", ["task"], buckets=_REQUEST_BUCKETS
)
RENEWALS = Counter(
    "emr_renewal_results",
    "Subscription renewals and recovery retries, by result (paid, charge_failed, no_card …).",
    ["kind", "outcome"],
)
WEBHOOKS = Counter(
    "emr_webhooks", "Inbound webhooks, by sender and what became of them.", ["source", "outcome"]
)
