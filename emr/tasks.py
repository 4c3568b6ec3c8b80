from celery import shared_task

from emr import operations


@shared_task(name="emr.beat_heartbeat")
def beat_heartbeat() -> None:
    operations.record_beat_heartbeat()
