"""What the refund flow costs on top of the gateway call it wraps.

For each gateway's local server, in one run: the full flow (`refund_order`: lock, checks,
attempt committed before the call, recording, history, events) against the bare adapter call
(`gateway.refund`) on equivalent payments. Prints the median time ratio, and the SQL queries per
refund with a small database and with many more orders and payments in it: the count must not
grow with the data.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/emr_billing python bench/refund_overhead.py

It creates and drops its own test database; nothing else is touched.
"""

import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emr.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/emr_billing")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from billing import payments  # noqa: E402
from billing.models import Invoice, Payment  # noqa: E402
from billing.refunds import refund_order  # noqa: E402
from billing.states import InvoiceStatus, PaymentKind, PaymentStatus  # noqa: E402
from emr.kernel.actors import Actor  # noqa: E402
from emr.models import Patient  # noqa: E402
from integrations.gateways import registry  # noqa: E402
from orders.models import Order, Product  # noqa: E402
from orders.services import OrderLine, create_order  # noqa: E402
from orders.states import OrderStatus  # noqa: E402
from tests.fixtures.nmi import TEST_SECURITY_KEY  # noqa: E402
from tests.fixtures.servers import free_port, run_server  # noqa: E402
from tests.fixtures.stripe import STRIPE_TEST_KEY  # noqa: E402

SAMPLES = 15
FILLER_ORDERS = 3000
ACTOR = Actor.system("bench")
CARDS = {"stripe": "pm_card_visa", "nmi": "nmi_tok_visa"}


def paid_orders(gateway: str, count: int, product: Product) -> list[Order]:
    payments.set_active_gateway(gateway=gateway, actor=ACTOR, reason="bench")
    orders = []
    for index in range(count):
        patient = Patient.objects.create(
            first_name="Bench", last_name=str(index), email=f"{uuid.uuid4().hex}@bench.example"
        )
        order = create_order(patient=patient, lines=[OrderLine(product, 1)], actor=ACTOR)
        one_off = payments.OneOffCard(gateway, CARDS[gateway])
        payments.charge_invoice(invoice=order.invoice, one_off=one_off, actor=ACTOR)
        orders.append(order)
    return orders


def add_filler(count: int) -> None:
    """Many unrelated paid orders, written in bulk: only their presence matters here."""
    patient = Patient.objects.create(
        first_name="Filler", last_name="Rows", email=f"filler-{uuid.uuid4().hex}@bench.example"
    )
    orders = Order.objects.bulk_create(
        Order(number=f"FILL-{i}", patient=patient, status=OrderStatus.PROCESSING, total_cents=1000)
        for i in range(count)
    )
    invoices = Invoice.objects.bulk_create(
        Invoice(number=f"FINV-{o.pk}", order=o, amount_cents=1000, status=InvoiceStatus.PAID)
        for o in orders
    )
    Payment.objects.bulk_create(
        Payment(
            invoice=i, kind=PaymentKind.CHARGE, status=PaymentStatus.SUCCEEDED, gateway="stripe",
            amount_cents=1000, transaction_id=f"pi_filler_{i.pk}", reference=uuid.uuid4(),
        )
        for i in invoices
    )  # fmt: skip


def time_flow(orders: list[Order]) -> tuple[list[float], list[int]]:
    seconds, queries = [], []
    for order in orders:
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            refund_order(order=order, actor=ACTOR, reason="bench")
            seconds.append(time.perf_counter() - started)
        queries.append(len(captured.captured_queries))
    return seconds, queries


def time_bare(gateway: str, orders: list[Order]) -> list[float]:
    adapter = registry.gateway_for(gateway)
    seconds = []
    for order in orders:
        charge = Payment.objects.get(invoice__order=order, kind=PaymentKind.CHARGE)
        started = time.perf_counter()
        adapter.refund(
            transaction_id=charge.transaction_id,
            amount_cents=charge.amount_cents,
            currency=charge.currency,
            reference=uuid.uuid4().hex,
        )
        seconds.append(time.perf_counter() - started)
    return seconds


def measure_time(gateway: str, product: Product) -> list[int]:
    """Prints the flow/bare ratio; returns the queries each flow refund made."""
    flow_orders = paid_orders(gateway, SAMPLES, product)
    bare = time_bare(gateway, paid_orders(gateway, SAMPLES, product))
    flow, queries = time_flow(flow_orders)
    ratio = statistics.median(flow) / statistics.median(bare)
    print(
        f"{gateway:>6}: refund flow {statistics.median(flow) * 1000:6.1f} ms, bare adapter "
        f"{statistics.median(bare) * 1000:6.1f} ms (median of {SAMPLES}): ratio {ratio:.2f}x"
    )
    return queries


def measure_queries_with_more_data(
    gateway: str, product: Product, small_queries: list[int], small_orders: int
) -> None:
    _, large_queries = time_flow(paid_orders(gateway, 5, product))
    print(
        f"{gateway:>6}: SQL queries per refund (median): {statistics.median(small_queries):.0f} "
        f"with {small_orders} orders, {statistics.median(large_queries):.0f} with "
        f"{Order.objects.count()} orders and "
        f"{Payment.objects.count()} payments"
    )


def main() -> None:
    stripe_port, nmi_port = free_port(), free_port()
    stripe_argv = [sys.executable, "-m", "integrations.fakes.stripe", "--port", str(stripe_port)]
    nmi_argv = [sys.executable, "-m", "integrations.fakes.nmi", "--port", str(nmi_port)]
    settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE = (
        STRIPE_TEST_KEY,
        f"http://127.0.0.1:{stripe_port}",
    )
    settings.NMI_SECURITY_KEY = TEST_SECURITY_KEY
    settings.NMI_API_URL = f"http://127.0.0.1:{nmi_port}/api/transact.php"
    settings.NMI_QUERY_URL = f"http://127.0.0.1:{nmi_port}/api/query.php"
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        with (
            run_server([*stripe_argv, "--api-key", STRIPE_TEST_KEY], stripe_port),
            run_server(
                [*nmi_argv, "--security-key", TEST_SECURITY_KEY, "--dup-seconds", "0"], nmi_port
            ),
        ):
            product = Product.objects.create(name="Bench consult", kind="SERVICE", price_cents=5000)
            queries = {gateway: measure_time(gateway, product) for gateway in ("stripe", "nmi")}
            small_orders = Order.objects.count()
            add_filler(FILLER_ORDERS)
            for gateway, small_queries in queries.items():
                measure_queries_with_more_data(gateway, product, small_queries, small_orders)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
