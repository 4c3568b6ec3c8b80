"""`/api/v1/escalations/`: list, read, open and resolve escalations. Thin: the same service as
the admin; a refusal answers {"code", "detail"} through the project's exception handler."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from emr.kernel.actors import Actor, Door
from emr.kernel.api import ActionPermission, StrictCharField, StrictModelSerializer
from emr.kernel.errors import InvalidInput
from emr.support.escalations import open_escalation, resolve_escalation
from emr.support.models import Escalation
from emr.support.states import EscalationRoute, EscalationStatus
from orders.models import Order
from subscriptions.models import Subscription


class EscalationSerializer(StrictModelSerializer):
    order_number = StrictCharField(
        source="order.number", read_only=True, default=None, allow_null=True
    )
    patient_email = StrictCharField(source="patient.email", read_only=True)

    class Meta:
        model = Escalation
        fields = [
            "id",
            "number",
            "route",
            "suggested_route",
            "suggestion_reason",
            "status",
            "patient",
            "patient_email",
            "order",
            "order_number",
            "subscription",
            "patient_reason",
            "message",
            "packet",
            "packet_text",
            "created_by_label",
            "created_at",
            "resolved_at",
            "resolved_by_label",
            "resolution_note",
        ]
        read_only_fields = fields


class OpenEscalationSerializer(serializers.Serializer):
    order = serializers.IntegerField(required=False, help_text="the order's id")
    subscription = serializers.IntegerField(required=False, help_text="the subscription's id")
    route = serializers.ChoiceField(
        choices=EscalationRoute.choices,
        required=False,
        help_text="Omitted: the route the guide's checklist suggests for this case.",
    )
    patient_reason = StrictCharField(max_length=5000)
    message = StrictCharField(
        max_length=5000, required=False, allow_blank=True, trim_whitespace=False
    )

    def validate(self, data):
        if ("order" in data) == ("subscription" in data):
            raise InvalidInput(
                "Escalate either an order or a subscription (one of them).",
                code="escalation.subject_required",
            )
        return data


class ResolveSerializer(serializers.Serializer):
    note = StrictCharField(max_length=5000)


# The filters are the list's: a single escalation is read whatever they say.
@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=EscalationStatus.values),
            OpenApiParameter("route", str, enum=EscalationRoute.values),
            OpenApiParameter("order", int, description="only this order's escalations"),
            OpenApiParameter("patient", int, description="only this patient's escalations"),
        ]
    )
)
class EscalationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Escalation.objects.select_related("order", "patient")
    serializer_class = EscalationSerializer
    permission_classes = [ActionPermission]
    # Resolving is checked by the service: each route has its own team's permission.
    action_permissions = {
        "list": "support.view_escalation",
        "retrieve": "support.view_escalation",
        "create": "support.add_escalation",
        "resolve": "support.view_escalation",
    }
    FILTERS = {"status": EscalationStatus.values, "route": EscalationRoute.values}

    def get_queryset(self):
        escalations = super().get_queryset()
        if self.action != "list":
            return escalations
        params = self.request.query_params
        for name, allowed in self.FILTERS.items():
            if name in params:
                if params[name] not in allowed:
                    raise InvalidInput(
                        f"{name} must be one of {', '.join(allowed)}.", code="invalid"
                    )
                escalations = escalations.filter(**{name: params[name]})
        for name in ("order", "patient"):
            if name in params:
                if not params[name].isdigit():
                    raise InvalidInput(f"{name} must be an id (a whole number).", code="invalid")
                escalations = escalations.filter(**{f"{name}_id": int(params[name])})
        return escalations

    @extend_schema(request=OpenEscalationSerializer, responses={201: EscalationSerializer})
    def create(self, request, *args, **kwargs):
        """Open an escalation: the packet is built from the order (or the subscription's latest
        order) and stored as it reads now."""
        payload = OpenEscalationSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        if "order" in data:
            data["order"] = get_object_or_404(Order, pk=data["order"])
        else:
            data["subscription"] = get_object_or_404(Subscription, pk=data["subscription"])
        escalation = open_escalation(actor=Actor.staff(request.user, door=Door.API), **data)
        return Response(EscalationSerializer(escalation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ResolveSerializer, responses=EscalationSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """Resolve with a note. Only the team the escalation is routed to may (403 otherwise);
        409 if it is already resolved."""
        payload = ResolveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        escalation = resolve_escalation(
            escalation=self.get_object(),
            note=payload.validated_data["note"],
            actor=Actor.staff(request.user, door=Door.API),
        )
        return Response(EscalationSerializer(escalation).data)
