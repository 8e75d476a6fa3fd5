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

        # A rule or the settings changed -> this process's copy of them is dropped (scoring.services.rules_forget).
        from django.db.models.signals import post_delete, post_save

        from nurturing.models import Sequence, Trigger

        from .models import ScoringRule, ScoringSettings
        from .services import rules_forget

        # (A score trigger's threshold, or its sequence archived, counts as part of the rules.)
        for model in (ScoringRule, ScoringSettings, Trigger, Sequence):
            post_save.connect(rules_forget, sender=model, dispatch_uid=f"scoring.forget.save.{model.__name__}")
            post_delete.connect(rules_forget, sender=model, dispatch_uid=f"scoring.forget.delete.{model.__name__}")
