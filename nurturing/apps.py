from django.apps import AppConfig


class NurturingConfig(AppConfig):
    name = "nurturing"
    verbose_name = "Nurturing"
    default_auto_field = "django.db.models.BigAutoField"
