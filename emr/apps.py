from django.apps import AppConfig


class EmrConfig(AppConfig):
    name = "emr"
    verbose_name = "Patients and clinic"

    def ready(self) -> None:
        # Imported here, not at the top: the table imports every app's services, which Django
        # can load only once all models are ready.
        from emr import reactions

        reactions.install()
