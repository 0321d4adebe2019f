from django.apps import AppConfig


class INRSetsConfig(AppConfig):
    name = "cinr_web.inrsets"
    label = "inrsets"
    verbose_name = "INR sets"
