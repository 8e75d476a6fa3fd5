from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    """The sales reps' own pages: Today, My leads, the lead page and its actions.

    It stands on `leads` (and reads `nurturing` for enrollments and emails);
    every write goes through those apps' services, as the admin's do.
    """

    name = "workspace"
    verbose_name = "Reps' workspace"
