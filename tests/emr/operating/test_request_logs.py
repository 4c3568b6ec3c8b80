"""One refund through the API, with JSON logging on in the web process (this one) and in a real
Celery worker: the request line, the gateway-call line and the task line carry the caller's
request id, and no line holds the patient's name, email or phone, the API token or a card
number."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from contextlib import contextmanager

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from emr.kernel.card_numbers import is_card_number
from emr.kernel.log_format import JsonFormatter, ScrubFilter, scrub
from emr.workflows.models import DispatchStatus, WorkflowEvent

DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){12,18}")
REQUEST_ID = "refund-story-0001"


@pytest.fixture
def celery_worker_env():
    return {"LOG_FORMAT": "json"}


@contextmanager
def json_log_lines():
    """This process's log lines as the JSON handler of settings.LOGGING writes them."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ScrubFilter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    lines: list[str] = []
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        lines.extend(output.getvalue().splitlines())


def parsed(lines: list[str]) -> list[dict]:
    found = []
    for line in lines:
        try:
            found.append(json.loads(line))
        except ValueError:
            continue  # the worker's start-up banner
    return found


def wait_for(condition, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.worker
def test_a_refund_reads_as_one_story_without_phi(paid_order, cs_user, celery_worker):
    order = paid_order("stripe", 8000)
    patient = order.patient
    patient.first_name, patient.last_name = "Rosalind", "Quennell-Faraday"
    patient.email, patient.phone = "rosalind.quennell@example.test", "+1 415 555 0199"
    patient.save()
    token = Token.objects.create(user=cs_user).key
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    with json_log_lines() as web_lines:
        answer = api.post(
            f"/api/v1/orders/{order.pk}/refund/",
            {"reason": "Patient asked"},
            format="json",
            HTTP_X_REQUEST_ID=REQUEST_ID,
        )
        assert answer.status_code == 201, answer.content
        assert answer["X-Request-ID"] == REQUEST_ID
        # An id that could forge a line (or carry PHI) is replaced, and the new one echoed.
        replaced = api.get("/healthz", HTTP_X_REQUEST_ID='x" "level": "ERROR')["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", replaced)
    wait_for(
        lambda: WorkflowEvent.objects.filter(
            event_type="order.refunded",
            subject_key=f"order:{order.pk}",
            dispatch_status=DispatchStatus.DISPATCHED,
        ).exists(),
        "the order.refunded event to be dispatched by the worker",
    )
    task_line = wait_for(
        lambda: next(
            (
                line
                for line in parsed(celery_worker.log().splitlines())
                if line.get("kind") == "task"
                and line["task"] == "workflows.dispatch_event"
                and line["request_id"] == REQUEST_ID
            ),
            None,
        ),
        "the dispatch task's log line",
    )

    web = parsed(web_lines)
    request_line = next(line for line in web if line.get("kind") == "request")
    assert request_line["request_id"] == REQUEST_ID
    assert (request_line["method"], request_line["status"]) == ("POST", 201)
    assert request_line["view"] == "order-refund"
    gateway_line = next(line for line in web if line.get("kind") == "gateway_call")
    assert gateway_line["request_id"] == REQUEST_ID
    assert (gateway_line["gateway"], gateway_line["operation"]) == ("stripe", "refund")
    assert gateway_line["outcome"] == "succeeded"
    assert task_line["outcome"] == "SUCCESS"

    everything = "\n".join(web_lines) + "\n" + celery_worker.log()
    for secret in ("Rosalind", "Quennell", patient.email, "415 555 0199", "4155550199", token):
        assert secret not in everything
    assert [run for run in DIGIT_RUN.findall(everything) if is_card_number(run)] == []


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("SMS to +1 (415) 555-0199 sent", "SMS to [removed] sent"),
        ("reply to rosalind.q@example.test", "reply to [removed]"),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [removed]"),
        ("saved pm_1QbcdEfgHijkLmno for later", "saved [removed] for later"),
        ("card 4242 4242 4242 4242 declined", "card [card number removed] declined"),
        # What operators need stays: order numbers, amounts, times, ids.
        ("ORD-000123 refunded 9000 at 2026-12-03T19:00:00Z", None),
        ("transaction pi_3QabcDEF refund re_3Qxyz", None),
    ],
)
def test_the_scrubber(text, kept):
    assert scrub(text) == (kept or text)
