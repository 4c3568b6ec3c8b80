"""Fills actor, door and reason on each historical record from the stamp in force.

This is bookkeeping of the history row itself, not a business side effect, which is why it may
hang on simple-history's signal.
"""

from django.dispatch import receiver
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record

from emr.kernel.actors import Door, current_stamp


@receiver(pre_create_historical_record)
def stamp_historical_record(sender, instance, history_instance, **kwargs):
    stamp = current_stamp()
    if stamp is not None:
        history_instance.history_actor = stamp.actor.label
        history_instance.history_door = stamp.actor.door
        if stamp.actor.user is not None:
            history_instance.history_user = stamp.actor.user
        if not history_instance.history_change_reason:
            history_instance.history_change_reason = stamp.reason
        _fit_reason(history_instance)
        return
    # No service stamp: a raw admin edit (simple-history's middleware knows the user) or a shell.
    request = getattr(HistoricalRecords.context, "request", None)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        history_instance.history_actor = user.get_username()
        history_instance.history_door = (
            Door.ADMIN if request.path.startswith("/admin/") else Door.API
        )
    else:
        history_instance.history_actor = "unknown"
        history_instance.history_door = Door.SHELL


def _fit_reason(history_instance) -> None:
    # simple-history keeps 100 characters of reason; the full text stays on the record that
    # needed it (a refund attempt, an escalation), so a long reason never fails a save.
    limit = history_instance._meta.get_field("history_change_reason").max_length
    reason = history_instance.history_change_reason or ""
    if limit and len(reason) > limit:
        history_instance.history_change_reason = reason[: limit - 1] + "…"
