from django.apps import AppConfig


class BelugaConfig(AppConfig):
    name = "integrations.beluga"
    label = "beluga"
    verbose_name = "Beluga telehealth"
