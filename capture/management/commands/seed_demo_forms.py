"""`manage.py seed_demo_forms`: two demo capture forms (a guide download and a demo request), through the service.

Runs after `seed_demo` and `seed_demo_sequences`. Open `/f/pipeline-guide/` and
`/f/book-a-demo/` to try them; the admin shows the HTML to embed each one.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from capture.models import CaptureForm
from capture.services import capture_form_save
from leads.models import ConversionKind, Resource
from nurturing.models import Sequence

EMAIL = {"name": "email", "label": "Work email", "type": "email", "required": True, "maps_to": "email"}
FIRST = {"name": "first_name", "label": "First name", "type": "text", "maps_to": "first_name"}
CONSENT = "I agree that the team keeps my details to send me what I asked for and related follow-ups."


class Command(BaseCommand):
    help = "Create the demo capture forms (once: with --if-empty, nothing happens when forms exist)."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="do nothing if there is a capture form already")

    def handle(self, *args, if_empty, **options):
        if if_empty and CaptureForm.objects.exists():
            self.stdout.write("Demo forms are already there: nothing to do.")
            return
        marketer = get_user_model().objects.filter(username="marketer").first()
        guide, _ = Resource.objects.get_or_create(
            slug="pipeline-review-guide",
            defaults={"name": "The pipeline review guide", "kind": Resource.Kind.GUIDE, "funnel": Resource.Funnel.TOFU,
                      "topic": "pipeline", "url": "https://crm.example.com/guides/pipeline-review.pdf"},
        )
        with transaction.atomic():
            capture_form_save(by=marketer, form=CaptureForm(
                name="Download the pipeline review guide", slug="pipeline-guide",
                conversion_kind=ConversionKind.objects.get(slug="guide-download"), resource=guide,
                fields=[EMAIL, FIRST, {"name": "company", "label": "Company", "type": "text", "maps_to": "company"}],
                consent_text=CONSENT, consent_version="2026-11", consent_required=True,
                thank_you_message="Thank you! The guide is on its way to your inbox.",
                sequence=Sequence.objects.filter(name="Guide download follow-up").first(),
            ))
            capture_form_save(by=marketer, form=CaptureForm(
                name="Book a demo", slug="book-a-demo", conversion_kind=ConversionKind.objects.get(slug="demo-request"),
                fields=[EMAIL, FIRST, {"name": "phone", "label": "Phone", "type": "tel", "maps_to": "phone"},
                        {"name": "team_size", "label": "Team size", "type": "select", "choices": ["1-10", "11-50", "51+"]}],
                consent_text=CONSENT, consent_version="2026-11",
                thank_you_message="Thank you! A rep will call you within the hour.",
                owner_rule=CaptureForm.OwnerRule.ROUND_ROBIN,
            ))
        self.stdout.write("Demo forms: /f/pipeline-guide/ and /f/book-a-demo/.")
