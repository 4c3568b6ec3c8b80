"""The refunds dashboard, mounted at /audit/dashboard/ by emr/urls.py."""

from django.urls import path

from audit import dashboard_views

urlpatterns = [
    path("", dashboard_views.dashboard_page, name="audit-dashboard"),
    path("<slug:chart>.csv", dashboard_views.chart_csv, name="audit-dashboard-csv"),
]
