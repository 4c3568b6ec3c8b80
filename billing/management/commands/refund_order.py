from django.core.management.base import BaseCommand, CommandError

from billing.refunds import refund_order
from emr.kernel.actors import Actor, Door
from emr.kernel.errors import DomainError
from emr.kernel.money import format_cents
from orders.models import Order


class Command(BaseCommand):
    help = "Refund an order through the gateway that took its payment (the same flow as the admin)."

    def add_arguments(self, parser):
        parser.add_argument("order_number", help="e.g. ORD-000123")
        parser.add_argument("--reason", required=True)
        parser.add_argument(
            "--amount-cents", type=int, default=None, help="default: all that remains"
        )

    def handle(self, *args, order_number, reason, amount_cents, **options):
        order = Order.objects.filter(number=order_number).first()
        if order is None:
            raise CommandError(f"No order {order_number}.")
        try:
            refund = refund_order(
                order=order,
                actor=Actor.system("refund-command", door=Door.COMMAND),
                reason=reason,
                amount_cents=amount_cents,
            )
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from error
        self.stdout.write(
            f"{order_number}: refunded {format_cents(refund.amount_cents, refund.currency)} "
            f"({refund.get_status_display()}, gateway refund {refund.transaction_id})."
        )
