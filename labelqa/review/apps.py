from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "labelqa.review"
    verbose_name = "Review"
