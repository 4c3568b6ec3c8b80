from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from audit.access_log import record_access
from audit.models import AccessedPage
from emr.communications import messages_for
from emr.kernel.actors import Actor, Door
from emr.kernel.api import ActionPermission, StrictModelSerializer
from emr.models import Patient, SentMessage
from emr.portal.accounts import invite_patient


class PatientSerializer(StrictModelSerializer):
    class Meta:
        model = Patient
        fields = ["id", "first_name", "last_name", "email", "phone", "date_of_birth", "created_at"]
        read_only_fields = ["id", "created_at"]


class PortalInviteSerializer(serializers.Serializer):
    patient = serializers.IntegerField(source="patient.pk")
    email = serializers.EmailField()
    expires_at = serializers.DateTimeField()


class SentMessageSerializer(serializers.ModelSerializer):
    order_number = serializers.CharField(source="order.number", default=None, read_only=True)

    class Meta:
        model = SentMessage
        fields = [
            "id",
            "channel",
            "kind",
            "recipient",
            "subject",
            "body_sha256",
            "body_length",
            "sent_by",
            "status",
            "status_detail",
            "attempts",
            "sent_at",
            "opened_at",
            "order",
            "order_number",
        ]


class PatientViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Patient.objects.all()
    serializer_class = PatientSerializer
    permission_classes = [ActionPermission]
    action_permissions = {
        "create": "emr.add_patient",
        "portal_invite": "emr.change_patient",
        "messages": "emr.view_sentmessage",
    }

    def retrieve(self, request, *args, **kwargs):
        patient = self.get_object()
        record_access(
            request,
            page=AccessedPage.API_PATIENT,
            record=f"patient #{patient.pk} ({patient.full_name})",
            patient=patient,
        )
        return Response(self.get_serializer(patient).data)

    @extend_schema(request=None, responses={201: PortalInviteSerializer})
    @action(detail=True, methods=["post"], url_path="portal-invite")
    def portal_invite(self, request, pk=None):
        """Email the patient a single-use, expiring link to set their portal password."""
        invitation = invite_patient(
            patient=self.get_object(), actor=Actor.staff(request.user, door=Door.API)
        )
        return Response(PortalInviteSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=SentMessageSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="messages")
    def messages(self, request, pk=None):
        """The communication log: every message sent to the patient (channel, recipient,
        subject, SHA-256 of the body, when, delivery status) and when they opened it in the
        portal, newest first."""
        patient = self.get_object()
        page = self.paginate_queryset(messages_for(patient=patient))
        return self.get_paginated_response(SentMessageSerializer(page, many=True).data)
