from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "cinr_web.runs"
    label = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from cinr_web import cleanup

        cleanup.connect()
