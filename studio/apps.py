from django.apps import AppConfig


class StudioConfig(AppConfig):
    """The marketers' pages: sequences built as a flow of steps, with a live preview on a real lead.

    It stands beside `workspace` (neither imports the other) on `nurturing` and `leads`; every write goes through
    nurturing's services, as the admin's do.
    """

    name = "studio"
    verbose_name = "Marketers' studio"
