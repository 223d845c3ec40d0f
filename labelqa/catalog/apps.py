import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger("labelqa")


class CatalogConfig(AppConfig):
    name = "labelqa.catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            logger.info("CELERY_BROKER_URL is not set: background tasks run in-process (eager mode).")
