"""The plans and subscriptions API (API.md). Thin: each action validates input and calls the
one service every door uses; refusals come back as {"code", "detail"}."""

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.models import PaymentMethod
from emr.kernel.actors import Actor, Door
from emr.kernel.api import (
    ActionPermission,
    StrictCharField,
    StrictIntegerField,
    StrictModelSerializer,
)
from emr.models import Patient
from orders.api import OrderSerializer
from subscriptions import lifecycle, switching
from subscriptions.billing_cycle import first_order_of, start_subscription
from subscriptions.models import Plan, PlanSwitch, Subscription
from subscriptions.states import OPEN_SWITCH_STATUSES, SwitchTiming

# --- Plans ---------------------------------------------------------------------------------


class PlanSerializer(StrictModelSerializer):
    price_cents = StrictIntegerField(min_value=1)
    interval_count = StrictIntegerField(min_value=1, required=False, default=1)
    financed_cycles = StrictIntegerField(
        min_value=0, required=False, allow_null=True, help_text="0 or null: not financed"
    )
    term_cycles = StrictIntegerField(min_value=1, required=False, allow_null=True)

    class Meta:
        model = Plan
        fields = [
            "id",
            "name",
            "product",
            "price_cents",
            "currency",
            "interval",
            "interval_count",
            "financed_cycles",
            "term_cycles",
            "payoff_switch_allowed",
            "active",
        ]
        read_only_fields = ["id"]

    def validate_financed_cycles(self, value: int | None) -> int | None:
        return value or None  # the model's one way of saying "not financed"

    def validate(self, data):
        financed, term = data.get("financed_cycles"), data.get("term_cycles")
        if financed and term and term < financed:
            raise serializers.ValidationError(
                {"term_cycles": "A fixed term cannot be shorter than the financed cycles."}
            )
        return data


class PlanViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Plan.objects.select_related("product")
    serializer_class = PlanSerializer
    permission_classes = [ActionPermission]
    action_permissions = {"create": "subscriptions.add_plan"}


# --- Subscriptions -------------------------------------------------------------------------


class ScheduledCancellationSerializer(serializers.Serializer):
    requested_at = serializers.DateTimeField(source="cancellation_scheduled_at")
    requested_by = StrictCharField(source="cancellation_scheduled_by")
    reason = StrictCharField(source="cancellation_scheduled_reason")


class SwitchSummarySerializer(StrictModelSerializer):
    class Meta:
        model = PlanSwitch
        fields = ["id", "status", "target_plan", "requested_at", "requested_by"]


class SubscriptionSerializer(StrictModelSerializer):
    recovery_cycles_remaining = serializers.IntegerField(read_only=True)
    recovery_balance_cents = serializers.IntegerField(read_only=True)
    scheduled_cancellation = serializers.SerializerMethodField()
    pending_switch = serializers.SerializerMethodField()

    class Meta:
        model = Subscription
        fields = [
            "id",
            "status",
            "patient",
            "plan",
            "payment_method",
            "started_at",
            "next_billing_at",
            "cycles_billed",
            "recovery_cycles_remaining",
            "recovery_balance_cents",
            "awaiting_payment",
            "scheduled_cancellation",
            "pending_switch",
            "cancelled_at",
            "cancellation_cause",
            "created_at",
        ]

    @extend_schema_field(ScheduledCancellationSerializer(allow_null=True))
    def get_scheduled_cancellation(self, subscription: Subscription):
        if not subscription.has_scheduled_cancellation:
            return None
        return ScheduledCancellationSerializer(subscription).data

    @extend_schema_field(SwitchSummarySerializer(allow_null=True))
    def get_pending_switch(self, subscription: Subscription):
        switch = subscription.switches.filter(status__in=OPEN_SWITCH_STATUSES).first()
        return SwitchSummarySerializer(switch).data if switch else None


class StartedSubscriptionSerializer(SubscriptionSerializer):
    first_order = serializers.SerializerMethodField()

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "first_order"]

    @extend_schema_field(OrderSerializer)
    def get_first_order(self, subscription: Subscription):
        return OrderSerializer(first_order_of(subscription)).data


class SubscriptionCreateSerializer(serializers.Serializer):
    patient = serializers.PrimaryKeyRelatedField(queryset=Patient.objects.all())
    plan = serializers.PrimaryKeyRelatedField(queryset=Plan.objects.select_related("product"))
    payment_method = serializers.PrimaryKeyRelatedField(
        queryset=PaymentMethod.objects.all(), help_text="A saved card id."
    )


class ReasonSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=500)


class OptionalReasonSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=500, required=False, allow_blank=True)


class SwitchRequestSerializer(serializers.Serializer):
    plan = serializers.PrimaryKeyRelatedField(queryset=Plan.objects.select_related("product"))
    timing = serializers.ChoiceField(choices=SwitchTiming.choices, default=SwitchTiming.NOW)
    reason = StrictCharField(max_length=500, required=False, allow_blank=True)


class SwitchSerializer(StrictModelSerializer):
    payoff_order = OrderSerializer(read_only=True)
    replacement = SubscriptionSerializer(read_only=True)
    replacement_order = serializers.SerializerMethodField()

    class Meta:
        model = PlanSwitch
        fields = [
            "id",
            "status",
            "subscription",
            "target_plan",
            "payoff_order",
            "replacement",
            "replacement_order",
            "requested_by",
            "requested_at",
            "completed_at",
            "failure_message",
        ]

    @extend_schema_field(OrderSerializer(allow_null=True))
    def get_replacement_order(self, switch: PlanSwitch):
        if switch.replacement is None:
            return None
        return OrderSerializer(first_order_of(switch.replacement)).data


class SubscriptionViewSet(
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Subscription.objects.select_related("plan")
    serializer_class = SubscriptionSerializer
    permission_classes = [ActionPermission]
    action_permissions = {
        "create": "subscriptions.add_subscription",
        "cancel": "subscriptions.change_subscription",
        "pause": "subscriptions.change_subscription",
        "resume": "subscriptions.change_subscription",
        "schedule_cancellation": "subscriptions.change_subscription",
        "switch": "subscriptions.switch_plan",
    }

    @extend_schema(
        request=SubscriptionCreateSerializer, responses={201: StartedSubscriptionSerializer}
    )
    def create(self, request):
        payload = SubscriptionCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        subscription = start_subscription(actor=self._actor(), **payload.validated_data)
        return Response(
            StartedSubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=ReasonSerializer, responses=SubscriptionSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._reasoned(lifecycle.cancel_subscription)

    @extend_schema(request=ReasonSerializer, responses=SubscriptionSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._reasoned(lifecycle.pause_subscription)

    @extend_schema(request=ReasonSerializer, responses=SubscriptionSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._reasoned(lifecycle.resume_subscription)

    @extend_schema(methods=["POST"], request=ReasonSerializer, responses=SubscriptionSerializer)
    @extend_schema(
        methods=["DELETE"], request=OptionalReasonSerializer, responses=SubscriptionSerializer
    )
    @action(detail=True, methods=["post", "delete"], url_path="schedule-cancellation")
    def schedule_cancellation(self, request, pk=None):
        if request.method == "POST":
            return self._reasoned(lifecycle.schedule_cancellation)
        payload = OptionalReasonSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        reason = payload.validated_data.get("reason") or "Scheduled cancellation withdrawn"
        subscription = lifecycle.withdraw_scheduled_cancellation(
            subscription=self.get_object(), actor=self._actor(), reason=reason
        )
        return Response(self._fresh(subscription))

    @extend_schema(request=SwitchRequestSerializer, responses={201: SwitchSerializer})
    @action(detail=True, methods=["post"])
    def switch(self, request, pk=None):
        subscription = self.get_object()
        payload = SwitchRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        switch = switching.switch_plan(
            subscription=subscription, actor=self._actor(), **payload.validated_data
        )
        return Response(SwitchSerializer(switch).data, status=status.HTTP_201_CREATED)

    def _reasoned(self, service):
        subscription = self.get_object()
        payload = ReasonSerializer(data=self.request.data)
        payload.is_valid(raise_exception=True)
        subscription = service(
            subscription=subscription, actor=self._actor(), reason=payload.validated_data["reason"]
        )
        return Response(self._fresh(subscription))

    def _actor(self) -> Actor:
        return Actor.staff(self.request.user, door=Door.API)

    def _fresh(self, subscription: Subscription):
        return SubscriptionSerializer(self.get_queryset().get(pk=subscription.pk)).data
