"""`manage.py seed_demo_sequences`: demo follow-up sequences with leads enrolled in them.

Runs after `seed_demo` (which makes the leads). Everything goes through the
nurturing services; enrollments are dated over the last days, so some first
emails are due at once and the worker sends them to the outbox on `make run`.
"""

import random
from datetime import time, timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from leads import services as lead_services
from leads.models import Lead, Persona, Resource
from leads.pipeline import LeadStatus
from nurturing import services
from nurturing.models import Sequence, Step, Suppression

SEQUENCES = (
    {
        "name": "Guide download follow-up",
        "goal": "Turn people who downloaded a guide into marketing-qualified leads.",
        "goal_stage": LeadStatus.MQL,
        "persona": "Sales leader at a SMB",
        "steps": (
            {
                "delay": timedelta(0),
                "stage_action": LeadStatus.NURTURING,
                "subject": "{{ first_name|default:'Hi' }}, your guide and three tips to start with",
                "text": (
                    "Hi {{ first_name|default:'there' }},\n\n"
                    "Thanks for downloading {{ resource.title|default:'our guide' }}. Three things teams like "
                    "{{ company.name|default:'yours' }} usually try first:\n\n"
                    "1. Call every new lead within an hour.\n2. Log every objection, in the lead's words.\n"
                    "3. Follow up until you get an answer, yes or no.\n\n"
                    "If you'd like to see how that looks in practice: {{ links.book_demo|default:'just reply to this email' }}\n\n"
                    "{{ sender.full_name|default:'The team' }}"
                ),
            },
            {
                "delay": timedelta(days=3),
                "condition": Step.Condition.NO_REPLY,
                "click_link_contains": "/pricing",
                "click_stage_action": LeadStatus.MQL,
                "click_creates_call_task": True,
                "subject": "How a team of 12 doubled its reply rate",
                "text": (
                    "Hi {{ first_name|default:'there' }},\n\nA short story from a customer in a team much like "
                    "{{ company.name|default:'yours' }}: they moved from ad-hoc follow-ups to a fixed rhythm and "
                    "doubled the replies they got in a quarter.\n\nWant the details? Reply and I'll send them. "
                    "What it costs: https://crm.example.com/pricing\n\n"
                    "{{ sender.full_name|default:'The team' }}"
                ),
            },
            {"delay": timedelta(days=4), "kind": Step.Kind.CALL_TASK},
        ),
    },
    {
        "name": "Demo request nudge",
        "goal": "Get qualified leads to book a demo.",
        "pause_company_on_reply": True,
        "goal_stage": LeadStatus.SQL,
        "persona": None,
        "steps": (
            {
                "delay": timedelta(days=1),
                "subject": "Shall we book 20 minutes, {{ first_name|default:'there' }}?",
                "text": (
                    "Hi {{ first_name|default:'there' }},\n\nYou asked about a demo. I can show you the pipeline "
                    "and follow-up sequences on {{ company.name|default:'your' }}'s own numbers in 20 minutes.\n\n"
                    "{{ links.book_demo|default:'Reply with a time that suits you.' }}\n\n{{ sender.full_name|default:'The team' }}"
                ),
            },
            {
                "delay": timedelta(days=4),
                "subject": "Still interested?",
                "text": "Hi {{ first_name|default:'there' }},\n\nNo pressure: if now is not the time, tell me and I'll stop writing.\n\n{{ sender.full_name|default:'The team' }}",
            },
        ),
    },
)


class Command(BaseCommand):
    help = "Create demo follow-up sequences and enroll demo leads in them."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing if any sequence exists.")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, if_empty, seed, **options):
        if if_empty and Sequence.objects.exists():
            self.stdout.write("Demo sequences are already there: nothing to do.")
            return
        rng = random.Random(seed)
        marketer = get_user_model().objects.filter(username="marketer").first()
        with transaction.atomic():
            sequences = [self._sequence(spec, marketer) for spec in SEQUENCES]
            self._suppress_a_few(rng)
            enrolled = self._enroll(rng, sequences, marketer)
        self.stdout.write(self.style.SUCCESS(f"Created {len(sequences)} demo sequences and {enrolled} enrollments."))

    def _sequence(self, spec, marketer):
        persona = Persona.objects.filter(name=spec["persona"]).first() if spec["persona"] else None
        sequence = Sequence.objects.create(
            name=spec["name"], goal=spec["goal"], goal_stage=spec["goal_stage"], target_persona=persona, created_by=marketer,
            pause_company_on_reply=spec.get("pause_company_on_reply", False),
        )
        for position, step in enumerate(spec["steps"], start=1):
            Step.objects.create(
                sequence=sequence,
                position=position,
                kind=step.get("kind", Step.Kind.EMAIL),
                delay=step["delay"],
                send_days="01234",
                window_start=time(8, 0),
                window_end=time(18, 0),
                subject_template=step.get("subject", ""),
                text_template=step.get("text", ""),
                stage_action=step.get("stage_action", ""),
                condition=step.get("condition", Step.Condition.ALWAYS),
                click_link_contains=step.get("click_link_contains", ""),
                click_stage_action=step.get("click_stage_action", ""),
                click_creates_call_task=step.get("click_creates_call_task", False),
            )
        return services.sequence_activate(sequence=sequence, by=marketer)

    def _suppress_a_few(self, rng):
        leads = list(Lead.objects.live().exclude(email="").order_by("id").values_list("email", flat=True)[:200])
        for email in rng.sample(leads, min(3, len(leads))):
            services.suppression_add(email=email, reason=Suppression.Reason.UNSUBSCRIBED, source="demo: unsubscribed by email link")

    def _enroll(self, rng, sequences, marketer):
        guide, demo = sequences
        now = timezone.now()
        checklist, _ = Resource.objects.get_or_create(
            slug="pipeline-checklist", defaults={"name": "Sales pipeline checklist", "kind": Resource.Kind.GUIDE}
        )
        candidates = {
            guide: Lead.objects.live().filter(status__in=[LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.NURTURING]),
            demo: Lead.objects.live().filter(status=LeadStatus.MQL),
        }
        enrolled = 0
        for sequence, leads in candidates.items():
            for lead in leads.exclude(email="").select_related("company", "owner").order_by("id")[:40]:
                if services.enrollment_refusal(lead=lead, sequence=sequence):
                    continue
                at = max(now - timedelta(days=rng.uniform(0, 6)), lead.stage_entered_at)
                if sequence is guide:  # what they downloaded, just before they were enrolled
                    lead_services.form_submission_record(
                        lead=lead, form_name="Checklist download", resource=checklist,
                        page_url="https://crm.example.com/guides/pipeline-checklist", at=min(at, now - timedelta(minutes=1)),
                    )
                services.enrollment_create(lead=lead, sequence=sequence, by=marketer, at=at)
                enrolled += 1
        return enrolled
