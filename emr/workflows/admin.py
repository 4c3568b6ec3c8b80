"""Workflows in the admin: build them (steps inline, checked on save), test them with sample
data, and follow every run step by step; retry a failed run from its failed step."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from emr.kernel.actors import Actor, Door
from emr.kernel.admin_pages import ReadOnlyAdminMixin
from emr.kernel.errors import DomainError
from emr.workflows import catalogue, runner
from emr.workflows.conditions import OPERATORS
from emr.workflows.models import StepLog, Workflow, WorkflowEvent, WorkflowRun, WorkflowStep
from emr.workflows.preview import preview_workflow
from emr.workflows.validation import StepSpec, validate_definition

STEP_CONFIG_HELP = (
    'Settings as JSON. condition: {"path": "order.status", "operator": "equals", "value": '
    '"AWAITING_PAYMENT", "reread": true} · wait: {"hours": 24} · email: {"subject": "…", '
    '"body": "Hi {{patient.firstName}} …"} · sms: {"body": "…"} · webhook: {"url": '
    '"https://…"} · status_update: {"status": "CANCELLED", "reason": "…"}. Operators: '
    + ", ".join(OPERATORS)
)


class WorkflowStepFormSet(forms.BaseInlineFormSet):
    """Checks the steps as a whole against the trigger chosen on the same page."""

    def clean(self):
        super().clean()
        if any(self.errors) or not self.instance.trigger:
            return  # the trigger's own error is shown on the form
        live = [
            (form.cleaned_data.get("position") or 0, index, form)
            for index, form in enumerate(self.forms)
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        specs = [
            StepSpec(kind=form.cleaned_data["kind"], config=form.cleaned_data.get("config") or {})
            for _, _, form in sorted(live, key=lambda entry: entry[:2])
        ]
        try:
            validate_definition(trigger=self.instance.trigger, steps=specs)
        except DomainError as problem:
            raise ValidationError(problem.detail, code=problem.code) from None


class WorkflowStepInline(admin.StackedInline):
    model = WorkflowStep
    formset = WorkflowStepFormSet
    extra = 0
    fields = ["position", "kind", "config"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "config":
            field.help_text = STEP_CONFIG_HELP
        return field


@admin.action(description="Test with sample data (sends nothing)")
def test_with_sample_data(modeladmin, request, queryset):
    for workflow in queryset:
        lines = preview_workflow(workflow=workflow)
        items = ((line.step_number, line.kind, line.outcome, line.detail) for line in lines)
        text = format_html_join("", "<li>{}. {} — {}: {}</li>", items)
        modeladmin.message_user(
            request, format_html("{}: <ul>{}</ul>", workflow.name, text), level=messages.INFO
        )


@admin.register(Workflow)
class WorkflowAdmin(SimpleHistoryAdmin):
    list_display = ["name", "trigger", "active", "updated_at"]
    list_filter = ["active", "trigger"]
    search_fields = ["name"]
    readonly_fields = ["trigger_fields", "signing_secret", "created_at", "updated_at"]
    fields = ["name", "trigger", "active", "description", "trigger_fields", "signing_secret"]
    inlines = [WorkflowStepInline]
    actions = [test_with_sample_data]

    @admin.display(description="Fields of the trigger's payload (merge tags and conditions)")
    def trigger_fields(self, workflow: Workflow):
        if not workflow.trigger:
            return "Choose a trigger and save to see its fields."
        fields = catalogue.get_event_type(workflow.trigger).fields()
        return format_html_join("", "<div><code>{}</code> — {}</div>", fields.items())


class StepLogInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The log of what each step did: evidence, never edited or removed (a retry adds rows)."""

    model = StepLog
    extra = 0
    fields = [
        "step_number",
        "kind",
        "attempt",
        "outcome",
        "detail",
        "response_status",
        "retry_at",
        "idempotency_key",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields


@admin.action(description="Retry from the failed step", permissions=["retry"])
def retry_failed_runs(modeladmin, request, queryset):
    actor = Actor.staff(request.user, door=Door.ADMIN)
    for run in queryset:
        try:
            runner.retry_run(run=run, actor=actor)
        except DomainError as refusal:
            modeladmin.message_user(request, f"{run}: {refusal.detail}", level=messages.ERROR)
        else:
            modeladmin.message_user(request, f"{run}: queued again.", level=messages.SUCCESS)


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "workflow", "event", "status", "next_step", "due_at", "started_at"]
    list_filter = ["status", "workflow"]
    list_select_related = ["workflow", "event"]
    search_fields = ["event__subject_key", "workflow__name"]
    readonly_fields = [
        "workflow",
        "event",
        "status",
        "next_step",
        "attempt",
        "due_at",
        "lease_expires_at",
        "last_error",
        "started_at",
        "finished_at",
        "pretty_payload",
    ]
    fields = readonly_fields
    inlines = [StepLogInline]
    actions = [retry_failed_runs]

    @admin.display(description="Payload the steps read")
    def pretty_payload(self, run: WorkflowRun):
        return format_html("<pre>{}</pre>", json.dumps(run.payload, indent=2))

    def has_retry_permission(self, request) -> bool:
        # A retry sends messages again: it takes more than the right to look at runs.
        return request.user.has_perm("workflows.change_workflowrun")


@admin.register(WorkflowEvent)
class WorkflowEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "event_type", "subject_key", "dispatch_status", "occurred_at", "actor"]
    list_filter = ["dispatch_status", "event_type"]
    search_fields = ["subject_key"]
    fields = [
        "event_type",
        "subject_key",
        "actor",
        "actor_door",
        "occurred_at",
        "dispatch_status",
        "dispatched_at",
        "dispatch_attempts",
        "pretty_payload",
    ]
    readonly_fields = fields

    @admin.display(description="Payload when emitted")
    def pretty_payload(self, event: WorkflowEvent):
        return format_html("<pre>{}</pre>", json.dumps(event.payload, indent=2))
