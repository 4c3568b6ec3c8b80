from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "emr.workflows"
    label = "workflows"
    verbose_name = "Workflow events and automations"
