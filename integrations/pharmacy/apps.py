from django.apps import AppConfig


class PharmacyConfig(AppConfig):
    name = "integrations.pharmacy"
    label = "pharmacy"
    verbose_name = "Pharmacy fulfilment"
