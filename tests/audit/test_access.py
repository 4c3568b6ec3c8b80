"""Who may open /audit/, and the access log every look at a patient's record writes."""

import pytest
from django.urls import URLPattern

from audit import urls
from audit.models import AccessLogEntry

pytestmark = pytest.mark.django_db


def audit_pages(order) -> list[str]:
    """Every page under /audit/, with a real record where the URL names one."""
    arguments = {
        "patient_id": order.patient_id,
        "number": order.number,
    }
    pages = []
    for pattern in urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        route = str(pattern.pattern)
        for name, value in arguments.items():
            route = route.replace(f"<int:{name}>", str(value)).replace(f"<str:{name}>", str(value))
        pages.append(f"/audit/{route}")
    return pages


def test_cs_and_medical_ops_get_403_on_every_audit_page(
    refunded_order, cs_user, medical_ops, admin_client_for
):
    for user in (cs_user, medical_ops):
        client = admin_client_for(user)
        for page in audit_pages(refunded_order):
            response = client.get(page)
            assert response.status_code == 403, page
            assert "The audit pages are for billing admins" in response.content.decode()
    assert AccessLogEntry.objects.count() == 0  # a refused look saw nothing


def test_billing_admins_and_superusers_open_every_audit_page(
    refunded_order, billing_admin, superuser, admin_client_for
):
    for user in (billing_admin, superuser):
        client = admin_client_for(user)
        for page in audit_pages(refunded_order):
            if "subscriptions/" in page:
                continue  # the order has no subscription; its page is a 404
            assert client.get(page).status_code == 200, page


def test_someone_not_signed_in_is_sent_to_the_staff_sign_in(client):
    response = client.get("/audit/orders/ORD-000001/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/audit/orders/ORD-000001/")


BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 audit-test", "REMOTE_ADDR": "198.51.100.7"}


def test_viewing_a_patients_timeline_adds_an_access_log_entry(
    refunded_order, billing_admin, admin_client_for
):
    client = admin_client_for(billing_admin)
    patient = refunded_order.patient
    response = client.get(f"/audit/patients/{patient.pk}/", **BROWSER)
    assert response.status_code == 200

    entry = AccessLogEntry.objects.get()
    assert (entry.user, entry.patient, entry.page) == (billing_admin, patient, "audit-timeline")
    assert (entry.ip_address, entry.user_agent) == ("198.51.100.7", "Mozilla/5.0 audit-test")
    assert entry.record == f"patient {patient.full_name} (#{patient.pk})"
    assert entry.path == f"/audit/patients/{patient.pk}/"


def test_every_staff_view_of_a_patient_is_logged_and_reviewable(
    refunded_order, billing_admin, cs_user, admin_client_for, api
):
    patient = refunded_order.patient
    admin_client_for(cs_user).get(f"/admin/emr/patient/{patient.pk}/change/", **BROWSER)
    admin_client_for(cs_user).get(f"/admin/support/patientprofile/{patient.pk}/profile/")
    assert api.get(f"/api/v1/patients/{patient.pk}/").status_code == 200
    reviewer = admin_client_for(billing_admin)
    reviewer.get(f"/audit/orders/{refunded_order.number}/")
    reviewer.get(f"/audit/export.csv?order={refunded_order.number}")

    assert list(AccessLogEntry.objects.order_by("id").values_list("user__username", "page")) == [
        ("cs-agent", "admin-patient"),
        ("cs-agent", "admin-profile"),
        ("cs-agent", "api-patient"),
        ("billing-admin", "audit-timeline"),
        ("billing-admin", "audit-export"),
    ]
    assert set(AccessLogEntry.objects.values_list("patient", flat=True)) == {patient.pk}

    page = reviewer.get("/audit/access-log/?user=cs-agent&page=api-patient").content.decode()
    assert "1</strong> view recorded" in page
    assert '<span class="door">Patient (API)</span>' in page
    assert '<span class="door">Audit export</span>' not in page


def test_access_log_entries_are_never_changed_or_deleted(
    refunded_order, billing_admin, admin_client_for
):
    admin_client_for(billing_admin).get(f"/audit/patients/{refunded_order.patient_id}/")
    entry = AccessLogEntry.objects.get()
    entry.record = "someone else"
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    assert AccessLogEntry.objects.get().record.startswith("patient ")


def test_the_access_log_is_read_only_in_the_admin_and_only_for_billing_admins(
    refunded_order, billing_admin, cs_user, admin_client_for
):
    admin_client_for(billing_admin).get(f"/audit/patients/{refunded_order.patient_id}/")
    entry = AccessLogEntry.objects.get()
    reviewer = admin_client_for(billing_admin)
    assert reviewer.get("/admin/audit/accesslogentry/").status_code == 200
    page = reviewer.get(f"/admin/audit/accesslogentry/{entry.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert admin_client_for(cs_user).get("/admin/audit/accesslogentry/").status_code == 403
