from datetime import timedelta

from django.core.management.base import BaseCommand

from billing.payments import reconcile_charges
from emr.kernel.actors import Actor, Door


class Command(BaseCommand):
    help = (
        "Resolve charges left pending because the gateway's answer was lost, by asking the "
        "gateway; it never charges again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-seconds",
            type=int,
            default=None,
            help="only charges at least this old (default: CHARGE_RECONCILE_AFTER_SECONDS)",
        )

    def handle(self, *args, older_than_seconds, **options):
        older_than = None if older_than_seconds is None else timedelta(seconds=older_than_seconds)
        resolved = reconcile_charges(
            actor=Actor.system("charge-reconciler", door=Door.COMMAND), older_than=older_than
        )
        self.stdout.write(f"Resolved {resolved} pending charge(s).")
