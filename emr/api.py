from rest_framework import mixins, serializers, viewsets

from emr.kernel.api import ActionPermission
from emr.models import Patient


class PatientSerializer(serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = ["id", "first_name", "last_name", "email", "phone", "date_of_birth", "created_at"]
        read_only_fields = ["id", "created_at"]


class PatientViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Patient.objects.all()
    serializer_class = PatientSerializer
    permission_classes = [ActionPermission]
    action_permissions = {"create": "emr.add_patient"}
