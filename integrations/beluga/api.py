"""Staff API for Beluga visits and their logs. Thin: each action calls the service."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from emr.kernel.actors import Actor, Door
from emr.kernel.api import ActionPermission, StrictCharField, StrictModelSerializer
from emr.kernel.errors import InvalidInput
from integrations.beluga import services
from integrations.beluga.models import BelugaLog, BelugaVisit


class VisitActionReasonSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=500)


class BelugaVisitSerializer(StrictModelSerializer):
    order_number = StrictCharField(source="order.number", read_only=True)
    cancellable = serializers.SerializerMethodField()

    class Meta:
        model = BelugaVisit
        fields = [
            "id",
            "order",
            "order_number",
            "master_id",
            "submit_status",
            "submit_error",
            "submit_attempts",
            "submitted_at",
            "status",
            "resolved_status",
            "cancelled_at",
            "cancellable",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_cancellable(self, visit: BelugaVisit) -> bool:
        return services.refusal_to_cancel(visit) is None


class BelugaLogSerializer(StrictModelSerializer):
    class Meta:
        model = BelugaLog
        fields = [
            "id",
            "visit",
            "master_id",
            "direction",
            "operation",
            "method",
            "path",
            "request_body",
            "http_status",
            "response_body",
            "error",
            "duration_ms",
            "created_at",
        ]
        read_only_fields = fields


def _filter(queryset, request, *, ids=None, texts=None):
    """Apply the `?param=value` filters present: `ids` and `texts` map param -> lookup."""
    for param, lookup in (ids or {}).items():
        value = request.query_params.get(param)
        if value:
            if not value.isdigit():
                raise InvalidInput(f"{param} must be an id (a whole number).", code="invalid")
            queryset = queryset.filter(**{lookup: int(value)})
    for param, lookup in (texts or {}).items():
        if value := request.query_params.get(param):
            queryset = queryset.filter(**{lookup: value})
    return queryset


class BelugaVisitViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = BelugaVisit.objects.select_related("order")
    serializer_class = BelugaVisitSerializer
    permission_classes = [ActionPermission]
    action_permissions = {
        "cancel": "beluga.cancel_belugavisit",
        "retry_submission": "beluga.submit_belugavisit",
    }

    @extend_schema(
        parameters=[OpenApiParameter("order", int, description="only this order's visit")]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            queryset = _filter(queryset, self.request, ids={"order": "order_id"})
        return queryset

    @extend_schema(request=VisitActionReasonSerializer, responses=BelugaVisitSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel the visit at Beluga and here. Nothing else changes: not the order, invoice,
        payments, subscription or pharmacy order."""
        visit = services.cancel_visit(
            visit=self.get_object(),
            actor=Actor.staff(request.user, door=Door.API),
            reason=self._reason(request),
        )
        return Response(BelugaVisitSerializer(visit).data)

    @extend_schema(request=VisitActionReasonSerializer, responses=BelugaVisitSerializer)
    @action(detail=True, methods=["post"], url_path="retry-submission")
    def retry_submission(self, request, pk=None):
        visit = services.retry_submission(
            visit=self.get_object(),
            actor=Actor.staff(request.user, door=Door.API),
            reason=self._reason(request),
        )
        return Response(BelugaVisitSerializer(visit).data)

    def _reason(self, request) -> str:
        payload = VisitActionReasonSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        return payload.validated_data["reason"]


class BelugaLogViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """EMR -> Beluga Logs: every call to Beluga and every webhook from it, redacted."""

    queryset = BelugaLog.objects.all()
    serializer_class = BelugaLogSerializer
    permission_classes = [ActionPermission]

    @extend_schema(
        parameters=[
            OpenApiParameter("visit", int, description="only this visit's log"),
            OpenApiParameter("master_id", str, description="only this masterId's log"),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            queryset = _filter(
                queryset,
                self.request,
                ids={"visit": "visit_id"},
                texts={"master_id": "master_id"},
            )
        return queryset
