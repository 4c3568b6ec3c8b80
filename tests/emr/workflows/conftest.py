import pytest

from emr.workflows import dispatch, runner, sms
from emr.workflows.models import WorkflowRun
from tests.emr.workflows.receiver import WebhookReceiver


@pytest.fixture(autouse=True)
def _sms_to_locmem(settings):
    settings.WORKFLOW_SMS_BACKEND = "emr.workflows.sms.LocmemSmsBackend"
    sms.outbox.clear()
    yield
    sms.outbox.clear()


@pytest.fixture
def receiver(settings):
    # The receiver listens on loopback, where production never sends.
    settings.WORKFLOW_WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    settings.WORKFLOW_WEBHOOK_REQUIRE_HTTPS = False
    webhook_receiver = WebhookReceiver()
    yield webhook_receiver
    webhook_receiver.close()


@pytest.fixture
def run_event():
    """Dispatch an event and advance its runs in this process, as the worker would."""

    def run(event) -> list[WorkflowRun]:
        dispatch.dispatch_event(event_id=event.pk, enqueue_run=lambda run_id: None)
        runs = list(WorkflowRun.objects.filter(event=event).order_by("id"))
        for started in runs:
            runner.advance_run(run_id=started.pk)
        return [WorkflowRun.objects.get(pk=started.pk) for started in runs]

    return run


@pytest.fixture
def resume_due(django_capture_on_commit_callbacks):
    """One beat sweep, then advance what it queued, in this process."""

    def resume() -> list[int]:
        queued: list[int] = []
        with django_capture_on_commit_callbacks(execute=True):
            runner.resume_due_runs(enqueue_run=queued.append)
        for run_id in queued:
            runner.advance_run(run_id=run_id)
        return queued

    return resume
