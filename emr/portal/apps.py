from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "emr.portal"
    label = "portal"
    verbose_name = "Patient portal"
