from django.apps import AppConfig


class BookingConfig(AppConfig):
    name = "booking"
    verbose_name = "Booking"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # nurturing.rendering.book_demo_links: {{ links.book_demo }} in a sequence's email is the lead's signed
        # link to its owner's (or the team's) booking page (booking/links.py).
        from nurturing import rendering

        from .links import BookDemoLinks

        rendering.book_demo_links = links = BookDemoLinks()

        # A page saved, deleted or given other reps is seen by this process's next email at once (other
        # processes within BookDemoLinks.CACHE_SECONDS).
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from .models import BookingPage

        def forget(**kwargs):
            links.forget()

        post_save.connect(forget, sender=BookingPage, dispatch_uid="booking.links_page_saved", weak=False)
        post_delete.connect(forget, sender=BookingPage, dispatch_uid="booking.links_page_deleted", weak=False)
        m2m_changed.connect(forget, sender=BookingPage.reps.through, dispatch_uid="booking.links_page_reps", weak=False)
