from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "cinr_web.datasets"
    label = "datasets"
    verbose_name = "Image datasets"
