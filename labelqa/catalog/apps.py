import logging

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate

logger = logging.getLogger("labelqa")


class CatalogConfig(AppConfig):
    name = "labelqa.catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        from labelqa.roles import sync_role_groups_after_migrate

        post_migrate.connect(sync_role_groups_after_migrate, dispatch_uid="labelqa.roles.sync_after_migrate")
        if settings.CELERY_TASK_ALWAYS_EAGER:
            logger.info("CELERY_BROKER_URL is not set: background tasks run in-process (eager mode).")
