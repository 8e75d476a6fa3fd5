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

        rendering.book_demo_links = BookDemoLinks()
