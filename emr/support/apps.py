from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "emr.support"
    label = "support"
    verbose_name = "Customer support"
