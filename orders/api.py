from contextlib import contextmanager

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.models import Invoice, Payment, PolicyAcknowledgement
from billing.order_status import transition_order
from billing.policies import STAFF_CHANNELS, acknowledge_order
from billing.refunds import refund_order, refund_quote
from emr.kernel import decisions
from emr.kernel.actors import Actor, Door
from emr.kernel.api import (
    ActionPermission,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictModelSerializer,
)
from emr.kernel.errors import InvalidInput, StateConflict
from emr.models import Patient
from emr.support.preflight import ORDER_ACTIONS, Check, order_preflight
from emr.support.preflight import Action as PreflightAction
from orders import services
from orders.history import order_timeline
from orders.models import Order, OrderItem, Product, ProductKind
from orders.states import OrderStatus


class ProductSerializer(StrictModelSerializer):
    price_cents = StrictIntegerField(min_value=0)
    sessions = StrictIntegerField(min_value=1, required=False, allow_null=True)

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
            "sessions",
        ]
        read_only_fields = ["id"]

    def validate(self, data):
        kind = data.get("kind", getattr(self.instance, "kind", None))
        sessions = data.get("sessions", getattr(self.instance, "sessions", None))
        if sessions is not None and kind != ProductKind.PACKAGE:
            raise serializers.ValidationError(
                {"sessions": "Only a session package (kind PACKAGE) grants sessions."}
            )
        return data


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


class PolicyVersionSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField(source="policy_id")
    version = serializers.IntegerField()
    text = serializers.CharField()


class OrderItemSerializer(serializers.Serializer):
    product = serializers.IntegerField(source="product_id")
    description = StrictCharField()
    quantity = serializers.IntegerField()
    unit_price_cents = serializers.IntegerField()
    total_cents = serializers.IntegerField()
    refund_policy = PolicyVersionSummarySerializer(
        source="refund_policy_version", allow_null=True, read_only=True
    )


class AcknowledgementSerializer(serializers.ModelSerializer):
    policy = serializers.IntegerField(source="policy_version.policy_id", read_only=True)
    version = serializers.IntegerField(source="policy_version.version", read_only=True)

    class Meta:
        model = PolicyAcknowledgement
        fields = [
            "id",
            "policy",
            "version",
            "text_sha256",
            "channel",
            "recorded_by_label",
            "acknowledged_at",
            "ip_address",
            "user_agent",
        ]


class OrderSerializer(StrictModelSerializer):
    invoice = serializers.SerializerMethodField()
    payments = serializers.SerializerMethodField()
    items = OrderItemSerializer(many=True, read_only=True)
    acknowledgements = AcknowledgementSerializer(many=True, read_only=True)
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
            "acknowledgements",
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


PREFLIGHT_DIGEST_HELP = (
    "The `digest` of the preflight checklist the client showed before this call: refused "
    "(409 preflight.changed) when the checklist is no longer the same."
)


class TransitionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    reason = StrictCharField(max_length=500)
    preflight_digest = StrictCharField(required=False, help_text=PREFLIGHT_DIGEST_HELP)


class RefundSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=500)
    # Validated again by the refund flow; here so the schema says what is accepted.
    amount_cents = StrictIntegerField(required=False, min_value=1)
    # Required to refund more than the refund policy's quote; recorded with the refund.
    override_reason = StrictCharField(max_length=500, required=False, allow_blank=True)
    preflight_digest = StrictCharField(required=False, help_text=PREFLIGHT_DIGEST_HELP)


class AcknowledgeSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=sorted(STAFF_CHANNELS))


class QuoteItemSerializer(serializers.Serializer):
    description = serializers.CharField(source="item.description")
    policy = serializers.IntegerField(source="version.policy_id", allow_null=True)
    version = serializers.IntegerField(source="version.version", allow_null=True)
    allowed_cents = serializers.IntegerField()
    sessions_total = serializers.IntegerField(allow_null=True)
    sessions_used = serializers.IntegerField(allow_null=True)
    sentence = serializers.CharField()


class RefundQuoteSerializer(serializers.Serializer):
    order_number = serializers.CharField(source="order.number")
    refundable_cents = serializers.IntegerField()
    remaining_cents = serializers.IntegerField()
    governed = serializers.BooleanField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    items = QuoteItemSerializer(many=True)
    explanation = serializers.ListField(child=serializers.CharField())


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
    digest = serializers.SerializerMethodField(
        help_text="Send it with the action as `preflight_digest`."
    )

    def get_digest(self, checklist) -> str:
        return _shown(checklist).sha256


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
        Prefetch("items", queryset=OrderItem.objects.select_related("refund_policy_version")),
        Prefetch(
            "acknowledgements",
            queryset=PolicyAcknowledgement.objects.select_related("policy_version"),
        ),
        Prefetch("invoice__payments", queryset=Payment.objects.order_by("created_at", "id")),
    )
    serializer_class = OrderSerializer
    permission_classes = [ActionPermission]
    # Actions that only hand the order to a service (which reads what it needs under its lock)
    # and do not serialize it: no items, acknowledgements or payments prefetched for nothing.
    LEAN_ACTIONS = frozenset({"refund", "transition", "acknowledgements"})
    action_permissions = {
        "create": "orders.add_order",
        "transition": "orders.change_order_status",
        "refund": "orders.refund_order",
        "acknowledgements": "billing.add_policyacknowledgement",
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
        target, reason = payload.validated_data["status"], payload.validated_data["reason"]
        actor = Actor.staff(request.user, door=Door.API)
        with _deciding(order, CHECKLIST_OF.get(target), actor, reason, payload.validated_data):
            order = transition_order(order=order, target=target, actor=actor, reason=reason)
        return Response(self._fresh(order))

    @extend_schema(request=RefundSerializer, responses={201: PaymentSerializer})
    @action(detail=True, methods=["post"])
    def refund(self, request, pk=None):
        order = self.get_object()
        payload = RefundSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        actor = Actor.staff(request.user, door=Door.API)
        with _deciding(order, PreflightAction.REFUND, actor, data["reason"], data):
            refund = refund_order(
                order=order,
                actor=actor,
                reason=data["reason"],
                amount_cents=data.get("amount_cents"),
                override_reason=data.get("override_reason", ""),
            )
        return Response(PaymentSerializer(refund).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=AcknowledgeSerializer, responses={201: AcknowledgementSerializer(many=True)}
    )
    @action(detail=True, methods=["post"])
    def acknowledgements(self, request, pk=None):
        """CS attests that the patient accepted the order's refund terms by phone or in person."""
        order = self.get_object()
        payload = AcknowledgeSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        acknowledge_order(
            order=order,
            channel=payload.validated_data["channel"],
            actor=Actor.staff(request.user, door=Door.API),
            ip_address=request.META.get("REMOTE_ADDR"),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        acknowledgements = order.acknowledgements.select_related("policy_version")
        return Response(
            AcknowledgementSerializer(acknowledgements, many=True).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(responses=RefundQuoteSerializer)
    @action(detail=True, methods=["get"], url_path="refund-quote")
    def refund_quote(self, request, pk=None):
        """What the refund policy allows now, with the reasons in sentences."""
        order = (
            Order.objects.select_related("invoice")
            .prefetch_related(
                Prefetch(
                    "items",
                    queryset=OrderItem.objects.select_related(
                        "refund_policy_version__policy", "package"
                    ).prefetch_related("package__redemptions"),
                ),
                "acknowledgements",
                "refund_attempts",
                "invoice__payments__refunds",
            )
            .get(pk=self.get_object().pk)
        )
        return Response(RefundQuoteSerializer(refund_quote(order)).data)

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

    def get_queryset(self):
        if self.action in self.LEAN_ACTIONS:
            return Order.objects.all()
        return super().get_queryset()

    def _fresh(self, order: Order):
        return OrderSerializer(self.queryset.all().get(pk=order.pk)).data


# The order statuses whose change has the guide's checklist.
CHECKLIST_OF = {
    OrderStatus.CANCELLED: PreflightAction.CANCEL,
    OrderStatus.REJECTED: PreflightAction.REJECT,
}


def _shown(checklist) -> decisions.Shown:
    return decisions.shown(action=f"orders.order.{checklist.action}", checklist=checklist)


@contextmanager
def _deciding(order: Order, action, actor: Actor, reason: str, data: dict):
    """Record the checklist with the change, as the admin does; a client that sends the digest
    it read is refused when the facts changed since (a refund happened meanwhile)."""
    if action is None:
        yield
        return
    shown = _shown(order_preflight(order, action))
    read = data.get("preflight_digest")
    if read is not None and read != shown.sha256:
        raise StateConflict(
            "The preflight checklist changed since it was read: read it again, then retry.",
            code="preflight.changed",
        )
    with decisions.deciding(
        record=order, shown=shown, actor=actor, reason=reason, seen=read is not None
    ):
        yield
