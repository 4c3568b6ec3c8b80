from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from emr.kernel.actors import Door
from subscriptions.billing_cycle import run_billing_cycle, system_actor


def aware_datetime(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise CommandError(
            f"--as-of must be an ISO date-time (2026-03-01T09:00:00+00:00), not {text!r}."
        ) from error
    # A date-time without an offset is read as UTC, the app's only time zone.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Bill every subscription due at the given moment (default: now): create each cycle's "
        "order and invoice and charge the saved card. Running it twice for one moment bills "
        "nothing twice."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of", type=aware_datetime, default=None, help="ISO date-time (default: now)"
        )

    def handle(self, *args, as_of, **options):
        summary = run_billing_cycle(
            as_of=as_of, actor=system_actor("billing-cycle", door=Door.COMMAND)
        )
        self.stdout.write(f"Billing cycle {summary}.")
