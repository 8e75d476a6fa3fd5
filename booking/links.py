"""{{ links.book_demo }}: the lead's own booking link (signed, so the lead does not type their details again),
to a page its owner books on, else the team's page; empty when neither exists."""

import time

from django.conf import settings
from django.db.models import Q
from django.urls import reverse

from .models import BookingPage
from .tokens import lead_token

CACHE_SECONDS = 10.0


class BookDemoLinks:
    """What nurturing's rendering asks (registered in BookingConfig.ready); the pages are read at most every
    CACHE_SECONDS per process, so a batch of emails costs no query per lead."""

    def __init__(self):
        self._read_at = -CACHE_SECONDS
        self._owners: frozenset = frozenset()
        self._team_page = False

    def _pages(self):
        if time.monotonic() - self._read_at >= CACHE_SECONDS:
            active = BookingPage.objects.filter(is_active=True)
            self._owners = frozenset(active.values_list("reps", flat=True)) - {None}
            self._team_page = active.filter(is_default=True).exists()
            self._read_at = time.monotonic()
        return self._owners, self._team_page

    def forget(self):
        self._read_at = -CACHE_SECONDS

    def url(self, lead) -> str:
        if lead is None or not lead.pk:
            return ""
        owners, team_page = self._pages()
        if not team_page and lead.owner_id not in owners:
            return ""
        return settings.CRM_SITE_URL + reverse("booking:for_lead", args=[lead_token(lead.pk)])

    def empty_when(self) -> Q:
        """The leads whose link would be empty, as a condition on Lead."""
        owners, team_page = self._pages()
        if team_page:
            return Q(pk__in=[])
        return Q(owner__isnull=True) | ~Q(owner_id__in=owners)
