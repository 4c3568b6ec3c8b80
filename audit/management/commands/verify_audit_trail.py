"""`manage.py verify_audit_trail`: seal pending history rows, re-compute the whole chain, and
exit non-zero naming the first broken record. `--digest` also prints the chain's recorded heads,
for an auditor to compare with the copies they keep."""

from django.core.management.base import BaseCommand, CommandError

from audit import chain
from audit.models import ChainDigest


class Command(BaseCommand):
    help = "Verify that the audit history was not changed, removed or inserted behind the app."

    def add_arguments(self, parser):
        parser.add_argument(
            "--digest", action="store_true", help="Also list the recorded digests of the head."
        )

    def handle(self, *args, digest=False, **options):
        verdict = chain.verify()
        if digest:
            for row in ChainDigest.objects.order_by("taken_at"):
                self.stdout.write(chain.digest_line(row))
        if verdict.broken is not None:
            raise CommandError(
                f"Audit trail broken after {verdict.checked} good record(s), at {verdict.broken}"
            )
        self.stdout.write(
            f"Audit trail verified: {verdict.checked} history record(s) chained "
            f"({verdict.sealed} sealed now)."
        )
