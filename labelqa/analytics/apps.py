from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "labelqa.analytics"
    verbose_name = "Analytics"
