"""The API as emr/api_urls.py mounts it (`path("", include("emr.workflows.urls"))` under
/api/v1/), for tests that must not depend on when that line lands."""

from django.urls import include, path

urlpatterns = [path("api/v1/", include("emr.workflows.urls"))]
