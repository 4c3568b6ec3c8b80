from datetime import timedelta

from django.core.management.base import BaseCommand

from billing.refund_reconciler import reconcile_refunds
from emr.kernel.actors import Actor, Door


class Command(BaseCommand):
    help = (
        "Resolve refunds whose outcome is not known yet (an attempt left pending by a crash or "
        "a timeout, a refund the gateway answered pending) by asking the gateway; it never "
        "refunds again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-seconds",
            type=int,
            default=None,
            help="only what is at least this old (default: REFUND_RECONCILE_AFTER_SECONDS for "
            "attempts, PENDING_REFUND_CHECK_AFTER_SECONDS for pending refunds)",
        )

    def handle(self, *args, older_than_seconds, **options):
        older_than = None if older_than_seconds is None else timedelta(seconds=older_than_seconds)
        resolved = reconcile_refunds(
            actor=Actor.system("refund-reconciler", door=Door.COMMAND), older_than=older_than
        )
        self.stdout.write(f"Resolved {resolved} pending refund(s).")
