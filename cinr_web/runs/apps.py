from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "cinr_web.runs"
    label = "runs"
    verbose_name = "Runs"
