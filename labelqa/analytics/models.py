"""Analytics stores nothing of its own; this model only carries its permission."""

from django.db import models


class AnalyticsAccess(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_analytics", "Open analytics and export reports and labels")]

    def __str__(self) -> str:
        return "analytics access"
