from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from emr.models import IntakeResponse, Patient, Prescription


@admin.register(Patient)
class PatientAdmin(SimpleHistoryAdmin):
    list_display = ["__str__", "email", "phone", "created_at"]
    search_fields = ["first_name", "last_name", "email", "orders__number"]
    readonly_fields = ["created_at"]
    raw_id_fields = ["user"]


@admin.register(IntakeResponse)
class IntakeResponseAdmin(SimpleHistoryAdmin):
    list_display = ["questionnaire", "patient", "order", "status", "submitted_at"]
    list_filter = ["status"]
    list_select_related = ["patient", "order"]
    search_fields = ["patient__email", "order__number"]
    raw_id_fields = ["patient", "order"]
    readonly_fields = ["status", "submitted_at", "created_at"]


@admin.register(Prescription)
class PrescriptionAdmin(SimpleHistoryAdmin):
    list_display = ["medication", "patient", "order", "written_at"]
    list_select_related = ["patient", "order"]
    search_fields = ["patient__email", "order__number", "medication"]
    raw_id_fields = ["patient", "order"]
