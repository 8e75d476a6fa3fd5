"""Admin registrations for the lead domain (the managers' pipeline review)."""

from . import lead, records  # noqa: F401  (registers the ModelAdmins)
