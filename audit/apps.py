from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from audit import stamping  # noqa: F401  (connects the history stamping receiver)

        # After every migrate, not only in audit's own migration: a history table another app
        # adds later is made append-only too (schema bookkeeping, not a business reaction).
        post_migrate.connect(_append_only, sender=self)


def _append_only(using, **kwargs) -> None:
    from django.db import connections

    # Imported here: the chain reads the model registry, complete only once apps are ready.
    from audit.chain import install_append_only_triggers

    install_append_only_triggers(connections[using])
