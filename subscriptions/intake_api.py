"""`POST /api/v1/intakes/{id}/reject/` and `…/needs-correction/` (medical ops), backed by
`emr.intake`. It lives here until the chart's API takes it (emr/ is not this change's to edit)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from emr import intake as intake_review
from emr.kernel.actors import Actor, Door
from emr.kernel.api import ActionPermission, StrictCharField, StrictModelSerializer
from emr.models import IntakeResponse
from subscriptions.models import Subscription


class NoteSerializer(serializers.Serializer):
    note = StrictCharField(max_length=2000)


class IntakeReviewSerializer(StrictModelSerializer):
    order_status = StrictCharField(source="order.status", default=None, read_only=True)
    order_kept_status = serializers.SerializerMethodField(
        help_text="Why the order of a rejected intake is not REJECTED (it had shipped), if so."
    )
    subscription = serializers.SerializerMethodField()

    class Meta:
        model = IntakeResponse
        fields = [
            "id",
            "questionnaire",
            "status",
            "review_note",
            "order",
            "order_status",
            "order_kept_status",
            "subscription",
        ]

    def get_order_kept_status(self, intake: IntakeResponse) -> str | None:
        return intake_review.order_kept_status(intake)

    def get_subscription(self, intake: IntakeResponse) -> dict | None:
        if intake.order is None or intake.order.subscription_id is None:
            return None
        subscription = Subscription.objects.get(pk=intake.order.subscription_id)
        return {"id": subscription.pk, "status": subscription.status}


class IntakeViewSet(viewsets.GenericViewSet):
    queryset = IntakeResponse.objects.select_related("order")
    serializer_class = IntakeReviewSerializer
    permission_classes = [ActionPermission]
    # Medical ops review intakes in the browsable API too: its form posts the note as a form.
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    action_permissions = {
        "reject": "emr.change_intakeresponse",
        "needs_correction": "emr.change_intakeresponse",
    }

    @extend_schema(request=NoteSerializer, responses=IntakeReviewSerializer)
    @action(detail=True, methods=["post"], serializer_class=NoteSerializer)
    def reject(self, request, pk=None):
        return self._review(intake_review.reject_intake)

    @extend_schema(request=NoteSerializer, responses=IntakeReviewSerializer)
    @action(
        detail=True, methods=["post"], url_path="needs-correction", serializer_class=NoteSerializer
    )
    def needs_correction(self, request, pk=None):
        return self._review(intake_review.send_back_for_correction)

    def _review(self, service):
        intake = self.get_object()
        payload = self.get_serializer(data=self.request.data)
        payload.is_valid(raise_exception=True)
        service(
            intake=intake,
            actor=Actor.staff(self.request.user, door=Door.API),
            note=payload.validated_data["note"],
        )
        return Response(IntakeReviewSerializer(self.get_queryset().get(pk=intake.pk)).data)
