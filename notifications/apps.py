from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """What reps and managers are told: a reply, a lead given to them, a task coming due, a deal gone quiet, a
    person clicking a pricing link. Read from the event log (its own cursor) and from periodic checks; shown as a
    bell with an unread count, a page, and an optional daily email digest."""

    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from leads.signals import person_erasing

        from .handlers import erase_person

        person_erasing.connect(erase_person, dispatch_uid="notifications.erase_person")
