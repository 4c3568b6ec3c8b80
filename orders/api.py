from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.models import Invoice, Payment
from billing.order_status import transition_order
from billing.refunds import refund_order
from emr.kernel.actors import Actor, Door
from emr.kernel.api import (
    ActionPermission,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictModelSerializer,
)
from emr.kernel.errors import InvalidInput
from emr.models import Patient
from emr.support.preflight import ORDER_ACTIONS, Check, order_preflight
from emr.support.preflight import Action as PreflightAction
from orders import services
from orders.history import order_timeline
from orders.models import Order, Product
from orders.states import OrderStatus


class ProductSerializer(StrictModelSerializer):
    price_cents = StrictIntegerField(min_value=0)

    class Meta:
        model = Product
        fields = [
            "id",
            "name",
            "kind",
            "price_cents",
            "currency",
            "active",
            "requires_intake",
            "requires_labs",
            "requires_prescription",
            "refund_policy",
        ]
        read_only_fields = ["id"]


class ProductViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Product.objects.all()
    serializer_class = ProductSerializer
    permission_classes = [ActionPermission]
    action_permissions = {"create": "orders.add_product"}


class OrderLineSerializer(serializers.Serializer):
    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.all())
    quantity = StrictIntegerField(min_value=1)


class OrderCreateSerializer(serializers.Serializer):
    patient = serializers.PrimaryKeyRelatedField(queryset=Patient.objects.all())
    items = OrderLineSerializer(many=True, allow_empty=False)


class InvoiceSummarySerializer(StrictModelSerializer):
    class Meta:
        model = Invoice
        fields = ["id", "number", "status", "amount_cents", "currency"]


class PaymentSerializer(StrictModelSerializer):
    class Meta:
        model = Payment
        fields = [
            "id",
            "kind",
            "status",
            "gateway",
            "amount_cents",
            "currency",
            "transaction_id",
            "refund_of",
            "card_brand",
            "card_last4",
            "failure_message",
            "created_at",
        ]


class OrderItemSerializer(serializers.Serializer):
    product = serializers.IntegerField(source="product_id")
    description = StrictCharField()
    quantity = serializers.IntegerField()
    unit_price_cents = serializers.IntegerField()
    total_cents = serializers.IntegerField()


class OrderSerializer(StrictModelSerializer):
    invoice = serializers.SerializerMethodField()
    payments = serializers.SerializerMethodField()
    items = OrderItemSerializer(many=True, read_only=True)
    locked = StrictBooleanField(source="is_locked", read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "kind",
            "status",
            "locked",
            "patient",
            "currency",
            "total_cents",
            "refunded_cents",
            "items",
            "invoice",
            "payments",
            "created_at",
        ]

    @extend_schema_field(InvoiceSummarySerializer(allow_null=True))
    def get_invoice(self, order: Order):
        invoice = getattr(order, "invoice", None)
        return InvoiceSummarySerializer(invoice).data if invoice else None

    @extend_schema_field(PaymentSerializer(many=True))
    def get_payments(self, order: Order):
        invoice = getattr(order, "invoice", None)
        return PaymentSerializer(invoice.payments.all(), many=True).data if invoice else []


class TransitionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    reason = StrictCharField(max_length=500)


class RefundSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=500)
    # Validated again by the refund flow; here so the schema says what is accepted.
    amount_cents = StrictIntegerField(required=False, min_value=1)


class PreflightItemSerializer(serializers.Serializer):
    key = StrictCharField()
    label = StrictCharField()
    state = serializers.ChoiceField(choices=[state.value for state in Check])
    ok = serializers.SerializerMethodField()
    sentence = StrictCharField()

    def get_ok(self, item) -> bool:
        return item.state != Check.BLOCKED


class PreflightSerializer(serializers.Serializer):
    action = StrictCharField()
    order_number = StrictCharField(source="subject")
    blocked = StrictBooleanField()
    items = PreflightItemSerializer(many=True)
    will_not_do = serializers.ListField(child=StrictCharField())


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    record = StrictCharField()
    action = StrictCharField()
    actor = StrictCharField()
    door = StrictCharField()
    reason = StrictCharField()
    changes = serializers.DictField()


class OrderViewSet(
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Order.objects.select_related("invoice").prefetch_related(
        "items",
        Prefetch("invoice__payments", queryset=Payment.objects.order_by("created_at", "id")),
    )
    serializer_class = OrderSerializer
    permission_classes = [ActionPermission]
    action_permissions = {
        "create": "orders.add_order",
        "transition": "orders.change_order_status",
        "refund": "orders.refund_order",
    }

    @extend_schema(request=OrderCreateSerializer, responses={201: OrderSerializer})
    def create(self, request):
        payload = OrderCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        order = services.create_order(
            patient=payload.validated_data["patient"],
            lines=[services.OrderLine(**line) for line in payload.validated_data["items"]],
            actor=Actor.staff(request.user, door=Door.API),
        )
        return Response(self._fresh(order), status=status.HTTP_201_CREATED)

    @extend_schema(request=TransitionSerializer, responses=OrderSerializer)
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        order = self.get_object()
        payload = TransitionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        order = transition_order(
            order=order,
            target=payload.validated_data["status"],
            actor=Actor.staff(request.user, door=Door.API),
            reason=payload.validated_data["reason"],
        )
        return Response(self._fresh(order))

    @extend_schema(request=RefundSerializer, responses={201: PaymentSerializer})
    @action(detail=True, methods=["post"])
    def refund(self, request, pk=None):
        order = self.get_object()
        payload = RefundSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        refund = refund_order(
            order=order,
            actor=Actor.staff(request.user, door=Door.API),
            **payload.validated_data,
        )
        return Response(PaymentSerializer(refund).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("action", enum=[a.value for a in ORDER_ACTIONS])],
        responses=PreflightSerializer,
    )
    @action(detail=True, methods=["get"])
    def preflight(self, request, pk=None):
        """The guide's checklist for refunding, cancelling or rejecting this order, or for
        cancelling its Beluga visit."""
        requested = request.query_params.get("action", PreflightAction.REFUND)
        if requested not in ORDER_ACTIONS:
            raise InvalidInput(
                "action must be refund or cancel (or reject, or cancel_visit for the order's "
                "Beluga visit).",
                code="preflight.unknown_action",
            )
        checklist = order_preflight(self.get_object(), PreflightAction(requested))
        return Response(PreflightSerializer(checklist).data)

    @extend_schema(responses=TimelineEntrySerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def history(self, request, pk=None):
        order = self.get_object()
        return Response(TimelineEntrySerializer(order_timeline(order), many=True).data)

    def _fresh(self, order: Order):
        return OrderSerializer(self.get_queryset().get(pk=order.pk)).data
