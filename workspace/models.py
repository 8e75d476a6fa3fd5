from django.conf import settings
from django.db import models


class SavedView(models.Model):
    """A user's named Leads list: its filters and sort as a query string, offered as a quick link above the list."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=60)
    query = models.CharField(max_length=2000, blank=True, help_text="The list's filters and sort, e.g. status=new&sort=score.")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="saved_view_name_unique_per_user")]

    def __str__(self):
        return self.name
