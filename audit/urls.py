"""/audit/: the billing admin's review pages (audit/access.py says who may open them)."""

from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.search, name="search"),
    path("patients/<int:patient_id>/", views.patient_timeline, name="patient"),
    path("orders/<str:number>/", views.order_timeline, name="order"),
    path("subscriptions/<str:number>/", views.subscription_timeline, name="subscription"),
    path("export.csv", views.export_csv, name="export-csv"),
    path("export.jsonl", views.export_jsonl, name="export-jsonl"),
    path("access-log/", views.access_log, name="access-log"),
]
