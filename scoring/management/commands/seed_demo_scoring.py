"""`manage.py seed_demo_scoring`: the demo's scoring rules, then every lead's score under them.

Runs after `seed_demo` (and the demo's sequences and forms). The demo's leads get their scores as they stand;
thresholds act on what changes from now on, so seeding moves no lead to MQL.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from leads.models import Lead, Persona, Resource
from scoring.models import ScoringRule, ScoringSettings
from scoring.services import RESCORE_BATCH, scores_refresh

K = ScoringRule.Kind
PERSONA_POINTS = {"Sales leader at a SMB": 20, "Founder": 15, "RevOps manager": 10, "Marketing lead": 5}
RULES = (
    dict(kind=K.TITLE, value="head of", points=10), dict(kind=K.TITLE, value="vp", points=10),
    dict(kind=K.TITLE, value="intern", points=-20), dict(kind=K.COMPANY_SIZE, value="11-50", points=10),
    dict(kind=K.COMPANY_SIZE, value="51-200", points=10),
    dict(kind=K.EMAIL_OPEN, points=2, max_times=5), dict(kind=K.EMAIL_CLICK, points=5, max_times=3),
    dict(kind=K.EMAIL_CLICK, value="pricing", points=10, max_times=2), dict(kind=K.EMAIL_REPLY, points=20),
    dict(kind=K.PAGE_VIEW, value="/pricing", points=10, max_times=3), dict(kind=K.FORM, value="book-a-demo", points=30),
)


class Command(BaseCommand):
    help = "Create the demo's scoring rules and score every lead (with --if-empty, nothing happens when rules exist)."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="do nothing if there is a scoring rule already")

    def handle(self, *args, if_empty, **options):
        if if_empty and ScoringRule.objects.exists():
            self.stdout.write("Scoring rules are already there: nothing to do.")
            return
        with transaction.atomic():
            if not ScoringSettings.objects.exists():
                ScoringSettings.objects.create(half_life_days=30, mql_threshold=60, sql_threshold=None)
            for persona in Persona.objects.filter(name__in=PERSONA_POINTS):
                ScoringRule.objects.create(kind=K.PERSONA, persona=persona, points=PERSONA_POINTS[persona.name])
            for resource in Resource.objects.filter(kind=Resource.Kind.GUIDE)[:3]:
                ScoringRule.objects.create(kind=K.DOWNLOAD, resource=resource, points=10)
            for rule in RULES:
                ScoringRule.objects.create(**rule)
        ids, scored = list(Lead.objects.order_by("pk").values_list("pk", flat=True)), 0
        for start in range(0, len(ids), RESCORE_BATCH):
            scored += scores_refresh(lead_ids=ids[start:start + RESCORE_BATCH], moves=False).scored
        self.stdout.write(f"Created {ScoringRule.objects.count()} scoring rules and scored {scored} leads.")
