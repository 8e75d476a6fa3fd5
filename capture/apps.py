from django.apps import AppConfig


class CaptureConfig(AppConfig):
    name = "capture"
    verbose_name = "Capture"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from leads.models import ConversionKind, Resource
        from leads.signals import leads_merging, leads_unmerging, person_erasing, person_exporting

        from .handlers import erase_person, export_person, move_page_views_back_on_unmerge, move_page_views_on_merge
        from .models import CaptureForm
        from .selectors import forget_forms

        leads_merging.connect(move_page_views_on_merge, dispatch_uid="capture.page_views_merge")
        leads_unmerging.connect(move_page_views_back_on_unmerge, dispatch_uid="capture.page_views_unmerge")
        person_erasing.connect(erase_person, dispatch_uid="capture.erase_person")
        person_exporting.connect(export_person, dispatch_uid="capture.export_person")
        # A form, or the kind and resource it shows, changed: read the forms again (capture.selectors).
        for model in (CaptureForm, ConversionKind, Resource):
            for signal in (post_save, post_delete):
                signal.connect(forget_forms, sender=model, dispatch_uid=f"capture.forget_forms.{model.__name__}")
