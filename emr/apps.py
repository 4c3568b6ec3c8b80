from django.apps import AppConfig


class EmrConfig(AppConfig):
    name = "emr"
    verbose_name = "Patients and clinic"

    def ready(self) -> None:
        # Imported here, not at the top: the table imports every app's services, and the
        # decision recorder (what staff saw, installed into the kernel's confirmation pages)
        # audit's models, which Django can load only once all models are ready.
        from audit.decisions import record_decision  # the recorder: models are ready now
        from emr import reactions  # the reaction table: every app's services
        from emr.kernel import decisions  # the kernel's hook: installed, never imported back

        reactions.install()
        decisions.install(record_decision)
