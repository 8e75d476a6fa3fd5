from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Scoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # traffic.signals.page_views_stored -> known leads who viewed pages are rescored (scoring/reader.py).
        from traffic.signals import page_views_stored

        from .reader import on_page_views_stored

        page_views_stored.connect(on_page_views_stored, dispatch_uid="scoring.page_views")
