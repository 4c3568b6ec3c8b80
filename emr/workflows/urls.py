"""Mounted under /api/v1/ by emr/api_urls.py: `path("", include("emr.workflows.urls"))`."""

from rest_framework.routers import SimpleRouter

from emr.workflows.api import WorkflowEventViewSet, WorkflowViewSet

router = SimpleRouter()
router.register("workflow-events", WorkflowEventViewSet, basename="workflow-event")
router.register("workflows", WorkflowViewSet, basename="workflow")

urlpatterns = router.urls
