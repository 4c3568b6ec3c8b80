"""Exports of a filtered trail: CSV and JSON Lines, one row per changed field, streamed."""

import csv
import io
import json

import pytest
from django.http import StreamingHttpResponse

pytestmark = pytest.mark.django_db


def _download(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


def test_the_csv_export_of_an_order_has_one_row_per_changed_field(
    refunded_order, billing_admin, admin_client_for
):
    client = admin_client_for(billing_admin)
    text = _download(client, f"/audit/export.csv?order={refunded_order.number}")
    rows = list(csv.DictReader(io.StringIO(text)))

    assert {"at", "actor", "door", "reason", "record", "field", "old", "new"} <= set(rows[0])
    order_rows = [
        (row["field"], row["old"], row["new"])
        for row in rows
        if row["record"] == f"order {refunded_order.number}" and row["kind"] == "change"
    ]
    # Newest first: the refund's two changes, the charge's, then what the order was created with.
    assert order_rows == [
        ("status", "Processing", "Refunded"),
        ("refunded", "$0.00", "$120.00"),
        ("status", "Pending", "Processing"),
        ("status", "—", "Pending"),
        ("total", "—", "$120.00"),
        ("refunded", "—", "$0.00"),
    ]
    refund = next(row for row in rows if row["action"].startswith("refund of $120.00"))
    assert (refund["actor"], refund["door"], refund["reason"], refund["field"]) == (
        "system job: billing-tests",
        "shell",
        "Patient cancelled within the window",
        "",
    )
    response = client.get(f"/audit/export.csv?order={refunded_order.number}")
    assert response["Content-Disposition"].startswith(
        f'attachment; filename="order-{refunded_order.number}-'
    )


def test_the_json_lines_export_holds_the_same_rows_and_follows_the_filters(
    refunded_order, billing_admin, admin_client_for
):
    client = admin_client_for(billing_admin)
    number = refunded_order.number
    csv_rows = list(
        csv.DictReader(io.StringIO(_download(client, f"/audit/export.csv?order={number}")))
    )
    lines = _download(client, f"/audit/export.jsonl?order={number}").splitlines()
    assert [json.loads(line) for line in lines] == csv_rows

    by_patient = _download(client, f"/audit/export.jsonl?patient={refunded_order.patient_id}")
    assert len(by_patient.splitlines()) > len(lines)  # the chart and the card too
    status_only = _download(client, f"/audit/export.jsonl?order={number}&field=status")
    assert {json.loads(line)["field"] for line in status_only.splitlines()} == {"status"}


def test_an_export_of_an_unknown_record_is_refused_with_the_reason(billing_admin, admin_client_for):
    response = admin_client_for(billing_admin).get("/audit/export.csv?order=ORD-999999")
    assert response.status_code == 400
    assert "No order “ORD-999999” here." in response.content.decode()
