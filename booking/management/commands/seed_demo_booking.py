"""`manage.py seed_demo_booking`: the demo's booking page (/book/demo/, round robin among the sales reps, each
with the usual week), and a few demo leads' meetings booked on it through the service (no emails: the leads are
made up).

Runs after `seed_demo` and `seed_demo_forms`.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from booking import services
from booking.models import BookingPage
from capture.models import CaptureForm
from capture.services import CaptureContext, capture_form_save
from core.roles import Role
from leads.models import ConversionKind, Lead
from leads.pipeline import LeadStatus

CONSENT = "I agree that the team keeps my details to prepare the demo and follow up on it."
BOOKED = 3


class Command(BaseCommand):
    help = "Create the demo booking page and a few booked meetings (once: with --if-empty, nothing when a page exists)."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="do nothing if there is a booking page already")

    def handle(self, *args, if_empty, **options):
        if if_empty and BookingPage.objects.exists():
            self.stdout.write("A booking page is already there: nothing to do.")
            return
        users = get_user_model().objects
        reps = list(users.filter(is_active=True, groups__name=Role.SALES_REP).order_by("pk").distinct())
        marketer = users.filter(username="marketer").first()
        with transaction.atomic():
            form = CaptureForm.objects.filter(slug="demo-booking").first() or capture_form_save(by=marketer, form=CaptureForm(
                name="Demo booking", slug="demo-booking", conversion_kind=ConversionKind.objects.get(slug="demo-booked"),
                fields=[
                    {"name": "email", "label": "Work email", "type": "email", "required": True, "maps_to": "email"},
                    {"name": "first_name", "label": "First name", "type": "text", "required": True, "maps_to": "first_name"},
                    {"name": "last_name", "label": "Last name", "type": "text", "maps_to": "last_name"},
                    {"name": "company", "label": "Company", "type": "text", "maps_to": "company"},
                    {"name": "goal", "label": "What would you like to see?", "type": "textarea"},
                ],
                consent_text=CONSENT, consent_version="2026-12", consent_required=True,
                thank_you_message="Thank you! Your demo is booked.", owner_rule=CaptureForm.OwnerRule.POOL,
            ))
            for rep in reps:
                calendar = services.calendar_for(rep)
                if not calendar.meeting_url:
                    calendar.meeting_url = f"https://meet.example.com/{rep.get_username()}"
                    calendar.save(update_fields=["meeting_url"])
            page = BookingPage.objects.create(
                slug="demo", title="Product demo", form=form, duration_minutes=30, move_to_status=LeadStatus.SQL,
                is_default=True, intro="Thirty minutes with one of our reps: your pipeline, live.",
            )
            page.reps.set(reps)
        booked = self._book_some(page)
        self.stdout.write(f"Demo booking page: /book/demo/ ({len(reps)} reps); {booked} meetings booked.")

    def _book_some(self, page) -> int:
        now = timezone.now()
        leads = list(Lead.objects.live().filter(status__in=[LeadStatus.MQL, LeadStatus.NURTURING], email__gt="",
                                                owner__in=page.reps.all()).order_by("pk")[:BOOKED])
        booked = 0
        for lead in leads:
            free = services.page_slots(page, start=now, days=14, lead=lead, now=now)
            if not free:
                continue
            services.meeting_book(page=page, starts_at=free[min(booked * 3, len(free) - 1)].starts_at,
                                  time_zone="Europe/London", data={"consent": "on"},
                                  context=CaptureContext(hosted=True, fill_token=None), lead=lead, notify=False)
            booked += 1
        return booked
