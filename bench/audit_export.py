"""What the audit export costs against the database's own fastest way out.

In one run: the CSV export of an order's trail of 100,000 history rows (`audit.exports`, the
code behind /audit/export.csv: union query, server-side cursor, diffs in words and money)
against a bare PostgreSQL `COPY (SELECT ...) TO STDOUT` of the same history rows. Prints rows
per second and the peak Python memory (tracemalloc) of each, and the ratio; then the SQL queries
the order's timeline page makes with 1,000 and with 100,000 history rows (it must not grow).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/emr_billing python bench/audit_export.py

It creates and drops its own test database; nothing else is touched.
"""

import os
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emr.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/emr_billing")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

from audit import exports  # noqa: E402
from audit.sources import order_scope  # noqa: E402
from audit.trail import TrailFilter  # noqa: E402
from emr.kernel.actors import Actor  # noqa: E402
from emr.models import Patient  # noqa: E402
from orders.models import Order, Product  # noqa: E402
from orders.services import OrderLine, create_order  # noqa: E402

ROWS = 100_000
SMALL = 1_000
ACTOR = Actor.system("bench")
HistoricalOrder = Order.history.model


def order_with_history(product: Product, rows: int) -> Order:
    """An order whose history has `rows` rows: each a change of its recovery attempts."""
    patient = Patient.objects.create(
        first_name="Bench", last_name=str(rows), email=f"bench{rows}@bench.example"
    )
    order = create_order(patient=patient, lines=[OrderLine(product, 1)], actor=ACTOR)
    first = order.history.get()
    columns = [
        field.attname
        for field in HistoricalOrder._meta.concrete_fields
        if field.attname not in {"history_id", "history_date", "history_type"}
    ]
    batch = []
    for step in range(1, rows):
        values = {column: getattr(first, column) for column in columns}
        values.update(recovery_attempts=step, history_change_reason=f"retry {step}")
        batch.append(
            HistoricalOrder(
                **values,
                history_type="~",
                history_date=first.history_date + timedelta(seconds=step),
            )
        )
        if len(batch) == 10_000:
            HistoricalOrder.objects.bulk_create(batch)
            batch = []
    HistoricalOrder.objects.bulk_create(batch)
    return order


def run_export(order: Order) -> int:
    written = 0
    for chunk in exports.csv_lines(TrailFilter(scope=order_scope(order))):
        written += chunk.count("\n")
    return written - 1  # the header


def run_copy(order: Order) -> int:
    table = HistoricalOrder._meta.db_table
    lines = 0
    with connection.cursor() as cursor:
        raw = cursor.connection.cursor()  # psycopg's own cursor: COPY is not in the DB-API
        query = (
            f"COPY (SELECT * FROM {table} WHERE id = {int(order.pk)} "  # noqa: S608
            "ORDER BY history_date DESC, history_id DESC) TO STDOUT WITH CSV"
        )
        with raw.copy(query) as copy:
            for data in copy:
                lines += bytes(data).count(b"\n")
    return lines


def measure(label: str, run, order: Order) -> float:
    started = time.perf_counter()
    rows = run(order)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    run(order)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rate = rows / seconds
    print(
        f"{label:>28}: {rows:>7} rows in {seconds:6.2f} s = {rate:>9,.0f} rows/s, "
        f"peak Python memory {peak / 1024 / 1024:6.1f} MiB"
    )
    return rate


def timeline_queries(client: Client, order: Order) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(f"/audit/orders/{order.number}/")
    assert response.status_code == 200, response.status_code
    return len(captured.captured_queries)


def main() -> None:
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        product = Product.objects.create(name="Bench consult", kind="SERVICE", price_cents=12000)
        small = order_with_history(product, SMALL)
        large = order_with_history(product, ROWS)
        print(f"export of order {large.number}'s trail ({ROWS:,} history rows), CSV:")
        copy_rate = measure("bare PostgreSQL COPY", run_copy, large)
        export_rate = measure("audit export (audit.exports)", run_export, large)
        print(f"ratio: the export runs at {export_rate / copy_rate:.3f}x the rows/s of COPY")

        client = Client()
        client.force_login(User.objects.create_superuser("bench-admin", "b@bench.example", "x"))
        client.get(f"/audit/orders/{small.number}/")  # warm the session and content types
        print(
            f"timeline page SQL queries: {timeline_queries(client, small)} with {SMALL:,} "
            f"history rows, {timeline_queries(client, large)} with {ROWS:,}"
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
