"""`/api/v1/workflow-events/` (what was emitted, and whether it was dispatched) and
`/api/v1/workflows/` (the clinic's automations). Thin: serializers shape, services decide."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from emr.kernel.actors import Actor, Door
from emr.kernel.api import ActionPermission, StrictCharField, StrictModelSerializer
from emr.workflows import catalogue, services
from emr.workflows.models import Workflow, WorkflowEvent, WorkflowRun
from emr.workflows.preview import preview_workflow
from emr.workflows.validation import StepSpec


class RunSummarySerializer(StrictModelSerializer):
    class Meta:
        model = WorkflowRun
        fields = ["id", "workflow", "status", "next_step", "due_at", "last_error"]


class WorkflowEventSerializer(StrictModelSerializer):
    type = StrictCharField(source="event_type")
    subject = StrictCharField(source="subject_key")
    runs = RunSummarySerializer(many=True, read_only=True)

    class Meta:
        model = WorkflowEvent
        fields = [
            "id",
            "type",
            "subject",
            "occurred_at",
            "actor",
            "actor_door",
            "payload",
            "dispatch_status",
            "dispatched_at",
            "dispatch_attempts",
            "runs",
        ]


@extend_schema(
    parameters=[
        OpenApiParameter("type", str, description="event name, e.g. order.refunded"),
        OpenApiParameter("subject", str, description='subject, e.g. "order:42"'),
    ]
)
class WorkflowEventViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = WorkflowEventSerializer
    queryset = WorkflowEvent.objects.prefetch_related("runs")

    def get_queryset(self):
        events = super().get_queryset()
        event_type = self.request.query_params.get("type")
        if event_type:
            catalogue.get_event_type(event_type)  # a typo answers 400, not an empty list
            events = events.filter(event_type=event_type)
        subject = self.request.query_params.get("subject")
        if subject:
            events = events.filter(subject_key=subject)
        return events


class StepSerializer(serializers.Serializer):
    kind = StrictCharField()
    config = serializers.DictField(required=False, default=dict)


class WorkflowSerializer(StrictModelSerializer):
    trigger = serializers.ChoiceField(choices=catalogue.EVENT_CHOICES)
    steps = StepSerializer(many=True)

    class Meta:
        model = Workflow
        fields = [
            "id",
            "name",
            "trigger",
            "active",
            "description",
            "steps",
            "signing_secret",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "signing_secret", "created_at", "updated_at"]

    def create(self, validated):
        return services.create_workflow(
            name=validated["name"],
            trigger=validated["trigger"],
            steps=_specs(validated["steps"]),
            active=validated.get("active", True),
            description=validated.get("description", ""),
            actor=self.context["actor"],
        )

    def update(self, workflow, validated):
        return services.update_workflow(
            workflow=workflow,
            actor=self.context["actor"],
            name=validated.get("name"),
            trigger=validated.get("trigger"),
            steps=_specs(validated["steps"]) if "steps" in validated else None,
            active=validated.get("active"),
            description=validated.get("description"),
        )


def _specs(steps: list[dict]) -> list[StepSpec]:
    return [StepSpec(kind=step["kind"], config=step.get("config") or {}) for step in steps]


class PreviewLineSerializer(serializers.Serializer):
    step_number = serializers.IntegerField()
    kind = StrictCharField()
    outcome = StrictCharField()
    detail = StrictCharField()


class CatalogueEventSerializer(serializers.Serializer):
    """One event a workflow can start on (the shape of `catalogue.describe()`)."""

    name = StrictCharField()
    subjectTypes = serializers.ListField(child=StrictCharField())  # the payload's wire name
    description = StrictCharField()
    fields = serializers.DictField(
        child=StrictCharField(), help_text="payload path → what it means"
    )


class WorkflowViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.ListModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Workflow.objects.prefetch_related("steps")
    serializer_class = WorkflowSerializer
    permission_classes = [ActionPermission]
    action_permissions = {
        "list": "workflows.view_workflow",
        "retrieve": "workflows.view_workflow",
        "catalogue": "workflows.view_workflow",
        "create": "workflows.add_workflow",
        "update": "workflows.change_workflow",
        "partial_update": "workflows.change_workflow",
        "destroy": "workflows.delete_workflow",
        "test": "workflows.view_workflow",
    }

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "actor": self._actor()}

    def _actor(self) -> Actor | None:
        user = self.request.user if self.request else None
        if user is None or not user.is_authenticated:
            return None
        return Actor.staff(user, door=Door.API)

    def perform_destroy(self, workflow):
        services.delete_workflow(workflow=workflow, actor=self._actor())

    @extend_schema(request=None, responses=PreviewLineSerializer(many=True))
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Run the workflow on sample data: nothing is sent or changed."""
        lines = preview_workflow(workflow=self.get_object())
        return Response(PreviewLineSerializer(lines, many=True).data, status=status.HTTP_200_OK)

    @extend_schema(responses=CatalogueEventSerializer(many=True))
    @action(detail=False, methods=["get"], pagination_class=None)
    def catalogue(self, request):
        """Every event a workflow can start on, with its payload's fields."""
        return Response(catalogue.describe())
