"""`manage.py seed_demo`: a realistic demo data set, so a fresh install has something to show.

Demo users for each role, marketing reference data (sources, campaigns with
monthly spend, personas, companies) and a few hundred leads, each walked along
the pipeline with calls, notes, meetings, objections, tasks and deals.

Every lead, stage move, activity, objection, task and deal is written by
`leads.services`, exactly as the app writes them, each dated with the
services' `at`/`occurred_at`/`created_at` arguments: the history lies in the
past, days to weeks between steps. Task due times and expected close dates are
plans and may lie ahead; nothing that happened is dated after the moment the
command started.
"""

import os
import random
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from core.policy import access_for
from core.roles import Role
from leads import demo_data as data
from leads import services
from leads.models import Activity, Campaign, CampaignSpend, Company, Deal, Lead, Objection, Persona, Source, Task
from leads.pipeline import FUNNEL, OPEN_STATUSES
from leads.pipeline import LeadStatus as S

DEFAULT_PASSWORD = "crm-demo"
DEMO_USERS = (("manager", Role.MANAGER), ("marketer", Role.MARKETER), ("rep1", Role.SALES_REP), ("rep2", Role.SALES_REP))
STAFF_ROLES = frozenset({Role.MANAGER, Role.MARKETER})
REPS = ("rep1", "rep2")

# Final stage -> (weight among leads, age range in days): new leads are recent,
# customers took weeks to win.
STAGE_MIX = {
    S.NEW: (12, (0.2, 20)),
    S.CONTACTED: (11, (1, 60)),
    S.NURTURING: (15, (4, 170)),
    S.MQL: (10, (10, 170)),
    S.SQL: (8, (14, 175)),
    S.OPPORTUNITY: (10, (20, 178)),
    S.CUSTOMER: (13, (40, 180)),
    S.LOST: (12, (12, 180)),
    S.DISQUALIFIED: (9, (1, 180)),
}
# The ways to each final stage. The first lead of a stage takes the first
# route, so even a small batch shows deals lost, reopened and recycled leads.
ROUTES = {
    S.NEW: ((),),
    S.CONTACTED: (("call", "lose", "reopen"), ("call",), ("call",)),
    S.NURTURING: (("call", "mql", "recycle"), ("nurture",), ("call", "nurture")),
    S.MQL: (("nurture", "mql"), ("call", "nurture", "mql")),
    S.SQL: (("call", "sql"), ("nurture", "mql", "sql"), ("call", "mql", "sql")),
    S.OPPORTUNITY: (("call", "sql", "deal"), ("nurture", "mql", "sql", "deal")),
    S.CUSTOMER: (
        ("call", "sql", "deal", "win", "upsell"), ("call", "sql", "deal", "win"), ("nurture", "mql", "sql", "deal", "win"),
    ),
    S.LOST: (
        ("call", "sql", "deal", "lose_deal"), ("call", "lose"), ("nurture", "mql", "sql", "deal", "lose_deal"),
        ("call", "nurture", "lose"),
    ),
    S.DISQUALIFIED: (("disqualify",), ("call", "disqualify")),
}
# Days from the previous step to this one, scaled down when a lead is too young for them all.
STEP_DAYS = {
    "call": (0.05, 3), "nurture": (1, 10), "mql": (5, 30), "sql": (3, 20), "recycle": (7, 25), "deal": (2, 14),
    "win": (10, 45), "upsell": (20, 60), "lose_deal": (10, 40), "lose": (7, 35), "reopen": (10, 40),
    "disqualify": (0.1, 5),
}
# Routes a lead may take without an owner (the unassigned pool); these go unassigned this often.
UNASSIGNED_STEPS, UNASSIGNED_SHARE = frozenset({"nurture", "mql", "disqualify"}), 0.55
CALL_OUTCOMES = (("connected", 55), ("voicemail", 25), ("no_answer", 12), ("busy", 5), ("wrong_number", 3))
CALL_SECONDS = {"connected": (180, 1800), "voicemail": (20, 60), "wrong_number": (10, 40)}
# A rep's touches on social networks: (network, what happened).
SOCIAL_TOUCHES = (("linkedin", "connection_sent"), ("linkedin", "connection_accepted"), ("linkedin", "message_sent"),
                  ("linkedin", "message_received"), ("linkedin", "comment"), ("x", "engaged"))
OBJECTION_WEIGHTS = {"price": 25, "timing": 20, "authority": 15, "need": 12, "competitor": 15, "trust": 8, "other": 5}
# Nothing that happened is dated closer to "now" than this, so time-in-stage is never zero.
MARGIN = timedelta(hours=2)
# An open task is overdue by this at most: a demo a rep opens after `make run` has a few tasks to catch up
# on, none forgotten for months.
OVERDUE_AT_MOST = timedelta(days=4)


@dataclass
class Story:
    """One lead's way through the pipeline, while it is being written."""

    lead: Lead
    owner: object
    prev: datetime  # when the previous step happened
    moments: list = field(default_factory=list)  # when each step of the route happened
    deal: Deal | None = None
    open_objections: list = field(default_factory=list)  # (objection, our answer)


class DemoSeeder:
    def __init__(self, *, rng: random.Random, now: datetime, password: str):
        self.rng, self.now, self.password = rng, now, password
        self.today = timezone.localdate(now)
        self.users, self.new_users, self.taken_emails = {}, [], set()
        self.objections_logged = 0
        self.social_touches = 0

    def run(self, n_leads: int):
        self.create_users()
        # Leads go to the demo reps who are sales reps here (an existing account of that name keeps its groups).
        self.reps = [name for name in REPS if access_for(self.users[name]).owns_leads]
        if not self.reps:
            raise CommandError(f"None of {', '.join(REPS)} is a sales rep here: give one the Sales rep group, or seed another database.")
        self.create_reference_data(companies=max(8, min(60, n_leads // 5)))
        self.taken_emails = set(Lead.objects.live().exclude(email="").values_list("email", flat=True))
        for stage, route in self.plan(n_leads):
            self.tell(stage, route)

    # --- Users and reference data ---------------------------------------------------

    def create_users(self):
        groups = {g.name: g for g in Group.objects.filter(name__in=[role.value for _, role in DEMO_USERS])}
        # One hash for the four accounts: a production password hash takes a
        # good part of a second, and these accounts share a published password anyway.
        encoded = make_password(self.password)
        for username, role in DEMO_USERS:
            if role.value not in groups:
                raise CommandError(f"The {role.value!r} group is missing: run `manage.py migrate` first.")
            first, last = data.STAFF_NAMES[username]
            user, created = get_user_model().objects.get_or_create(
                username=username,
                defaults={"first_name": first, "last_name": last, "email": f"{first}.{last}@example.com".lower(),
                          "is_staff": role in STAFF_ROLES, "password": encoded},
            )
            if created:
                user.groups.add(groups[role.value])
                self.new_users.append(username)
            self.users[username] = user

    def create_reference_data(self, *, companies: int):
        self.sources = {
            slug: Source.objects.get_or_create(slug=slug, defaults={"name": name, "medium": medium})[0]
            for name, slug, medium, _ in data.SOURCES
        }
        self.source_weights = [weight for *_, weight in data.SOURCES]
        self.personas = {}
        for name, role, description, interests, demographics, _ in data.PERSONAS:
            self.personas[name] = Persona.objects.get_or_create(name=name, defaults={
                "role": role, "description": description, "interests": interests, "demographics": demographics})[0]
        self.titles = {name: titles for name, *_, titles in data.PERSONAS}
        self.time_zones = {country: zones for country, zones, _ in data.COUNTRIES}
        self.campaigns = [self.campaign(*row) for row in data.CAMPAIGNS]
        self.companies = self.create_companies(companies)

    def campaign(self, name, slug, source, medium, persona, starts, ends, monthly_budget):
        campaign, created = Campaign.objects.get_or_create(slug=slug, defaults={
            "name": name, "source": self.sources[source], "medium": medium, "persona": self.personas[persona],
            "starts_on": self.today - timedelta(days=starts),
            "ends_on": None if ends is None else self.today - timedelta(days=ends)})
        if created:
            CampaignSpend.objects.bulk_create(self.monthly_spend(campaign, monthly_budget))
        return campaign

    def monthly_spend(self, campaign, budget):
        """One row per calendar month the campaign ran, pro rata for partial months."""
        start, end, rows = campaign.starts_on, campaign.ends_on or self.today, []
        month = start.replace(day=1)
        while month <= end:
            next_month = (month + timedelta(days=32)).replace(day=1)
            period_start, period_end = max(month, start), min(next_month - timedelta(days=1), end)
            share = ((period_end - period_start).days + 1) / (next_month - month).days
            amount = (Decimal(round(self.rng.uniform(*budget) * share * 100)) / 100).quantize(Decimal("0.01"))
            rows.append(CampaignSpend(campaign=campaign, period_start=period_start, period_end=period_end, amount=amount))
            month = next_month
        return rows

    def create_companies(self, count):
        existing = {c.name: c for c in Company.objects.all()}
        pairs = [(stem, kind) for stem in data.COMPANY_STEMS for kind in data.COMPANY_KINDS]
        companies, new = [], []
        for stem, (kind, industry) in self.rng.sample(pairs, count):
            country = self.country()
            size = self.rng.choice(data.COMPANY_SIZES)
            name = f"{stem} {kind}"
            if name not in existing:
                existing[name] = Company(name=name, domain=f"{slugify(stem)}-{slugify(kind)}.example",
                                         industry=industry, size=size, country=country)
                new.append(existing[name])
            companies.append(existing[name])
        Company.objects.bulk_create(new)
        return companies

    # --- The plan -------------------------------------------------------------------

    def plan(self, n_leads):
        """Each lead's final stage and route: every stage once (for small batches), then the usual mix."""
        stages = list(STAGE_MIX)
        self.rng.shuffle(stages)
        weights = [weight for weight, _ in STAGE_MIX.values()]
        stages += self.rng.choices(list(STAGE_MIX), weights, k=max(0, n_leads - len(stages)))
        seen = set()
        for stage in stages[:n_leads]:
            routes = ROUTES[stage]
            yield stage, routes[0] if stage not in seen else self.rng.choice(routes)
            seen.add(stage)

    def tell(self, stage, route):
        age = self.rng.uniform(*STAGE_MIX[stage][1])
        unassigned = set(route) <= UNASSIGNED_STEPS and self.rng.random() < UNASSIGNED_SHARE
        owner = None if unassigned else self.users[self.rng.choice(self.reps)]
        lead = self.create_lead(age=age, owner=owner)
        story = Story(lead=lead, owner=owner, prev=lead.created_at)
        for step, moment in zip(route, self.timeline(lead.created_at, route)):
            getattr(self, f"step_{step}")(story, moment)
            story.prev = moment
            story.moments.append(moment)
        self.add_notes(story)
        self.add_social_touches(story)
        self.add_follow_up_calls(story)
        self.settle_objections(story)
        self.add_open_task(story)

    def timeline(self, start, route):
        gaps = [self.rng.uniform(*STEP_DAYS[step]) for step in route]
        room = max((self.now - MARGIN - start) / timedelta(days=1), 0) * 0.9
        scale = min(1, room / sum(gaps)) if gaps else 1
        moments, moment = [], start
        for gap in gaps:
            moment += timedelta(days=gap * scale)
            moments.append(moment)
        return moments

    # --- Leads ----------------------------------------------------------------------

    def create_lead(self, *, age, owner):
        rng = self.rng
        created_at = self.now - timedelta(days=age)
        source = rng.choices(list(self.sources.values()), self.source_weights)[0]
        campaign = self.campaign_running(source, days_ago=age)
        persona = campaign.persona if campaign and rng.random() < 0.8 else rng.choice([*self.personas.values(), None])
        company = rng.choice(self.companies) if rng.random() < 0.9 else None
        country = company.country if company else self.country()
        first, last = rng.choice(data.FIRST_NAMES), rng.choice(data.LAST_NAMES)
        email = self.unique_email(first, last, company) if rng.random() < 0.96 else ""
        medium = campaign.medium if campaign else source.medium
        consent = source.slug != "referral" or rng.random() < 0.5
        actor, reason = data.LEAD_CREATED_BY[source.slug]
        return services.lead_create(
            by=owner if source.slug == "referral" else None, actor=actor, reason=reason,
            created_at=created_at, first_name=first, last_name=last, email=email,
            phone=self.phone(country) if not email or rng.random() < 0.55 else "",
            title=rng.choice(self.titles[persona.name] if persona else data.OTHER_TITLES), company=company,
            source=source, campaign=campaign, utm_medium=medium,
            utm_content=rng.choice(data.UTM_CONTENT.get(medium, ("",))) if campaign else "",
            utm_term=rng.choice(data.UTM_TERMS) if source.slug == "google" else "",
            persona=persona, owner=owner,
            timezone="" if rng.random() < 0.15 else rng.choice(self.time_zones[country]),
            consent_given_at=created_at if consent else None,
            consent_text=rng.choice(data.CONSENT_TEXTS) if consent else "",
            consent_source=self.consent_source(source, campaign) if consent else "",
        )

    def country(self):
        return self.rng.choices(data.COUNTRIES, [weight for *_, weight in data.COUNTRIES])[0][0]

    def consent_source(self, source, campaign):
        places = [p for p in data.CONSENT_SOURCES[source.slug] if campaign or "{campaign}" not in p]
        return self.rng.choice(places).format(campaign=campaign)

    def campaign_running(self, source, *, days_ago):
        # Compared in days ago, not dates, so the same seed picks the same campaigns at any hour.
        running = [
            c for c in self.campaigns
            if c.source_id == source.pk and (self.today - c.starts_on).days >= days_ago
            and (c.ends_on is None or (self.today - c.ends_on).days <= days_ago)
        ]
        return self.rng.choice(running) if running else None

    def unique_email(self, first, last, company):
        f, l = slugify(first, sep=""), slugify(last, sep="")
        local = self.rng.choice((f"{f}.{l}", f"{f}{l}", f"{f[0]}{l}", f"{f}.{l[0]}"))
        domain = company.domain if company else self.rng.choice(data.PERSONAL_EMAIL_DOMAINS)
        email, n = f"{local}@{domain}", 1
        while email in self.taken_emails:  # a second batch (--force) or two namesakes at one company
            n += 1
            email = f"{local}{n}@{domain}"
        self.taken_emails.add(email)
        return email

    def phone(self, country):
        # Ranges reserved for fiction where the country has one.
        n = self.rng.randint(0, 999)
        if country == "United Kingdom":
            return f"+44 7700 900{n:03d}"
        if country in ("United States", "Canada"):
            return f"+1 {self.rng.choice(('212', '312', '415', '416'))} 555 01{n % 100:02d}"
        if country == "France":
            return f"+33 1 99 00 {n % 100:02d} {self.rng.randint(10, 99)}"
        prefix = self.rng.choice(("31", "34", "49", "61", "65"))
        return f"+{prefix} {self.rng.randint(10, 99)} {self.rng.randint(100000, 999999)}"

    # --- Pipeline steps ---------------------------------------------------------------

    def move(self, story, to_status, moment, reasons, *, by=None, actor=""):
        reason = self.fill(self.rng.choice(reasons))
        services.lead_change_stage(lead=story.lead, to_status=to_status, by=by, actor=actor,
                reason=reason, at=moment)

    def step_call(self, story, moment):
        # The first call moves a New lead to Contacted, dated when the service runs.
        self.log_call(story, moment, direction=Activity.Direction.OUTBOUND)

    def step_nurture(self, story, moment):
        by, actor = (story.owner, "") if story.owner else (None, "Welcome sequence")
        self.move(story, S.NURTURING, moment, data.NURTURE_REASONS, by=by, actor=actor)

    def step_mql(self, story, moment):
        if self.rng.random() < 0.5:
            self.move(story, S.MQL, moment, data.MQL_REASONS, by=story.owner or self.users["manager"])
        else:
            self.move(story, S.MQL, moment, data.MQL_REASONS, actor="Lead scoring")

    def step_sql(self, story, moment):
        self.log_meeting(story, self.before(story, moment), "discovery", minutes=(20, 45), objection_chance=0.4)
        self.move(story, S.SQL, moment, data.SQL_REASONS, by=story.owner)
        self.add_done_task(story, "sql", moment)

    def step_recycle(self, story, moment):
        self.move(story, S.NURTURING, moment, data.RECYCLE_REASONS, by=story.owner)

    def step_reopen(self, story, moment):
        self.move(story, S.CONTACTED, moment, data.REOPEN_REASONS, by=story.owner)

    def step_lose(self, story, moment):
        self.move(story, S.LOST, moment, data.LOST_REASONS, by=story.owner)

    def step_disqualify(self, story, moment):
        self.move(story, S.DISQUALIFIED, moment, data.DISQUALIFY_REASONS, by=story.owner or self.users["manager"])

    def step_deal(self, story, moment):
        self.log_meeting(story, self.before(story, moment), "demo", minutes=(30, 60), objection_chance=0.5)
        product, low, high = self.rng.choice(data.PRODUCTS)
        story.deal = services.deal_open(lead=story.lead, value=Decimal(self.rng.randrange(low, high, 50)),
            currency="EUR", product=product, by=story.owner,
            expected_close_on=(moment + timedelta(days=self.rng.randint(14, 60))).date(), at=moment)
        self.add_done_task(story, "deal", moment)

    def step_win(self, story, moment):
        closing = self.before(story, moment)
        self.log_meeting(story, closing, "closing", minutes=(30, 45), objection_chance=0)
        for objection, answer in story.open_objections:  # answered before they signed
            services.objection_resolve(objection=objection, response=answer, by=story.owner, at=closing)
        story.open_objections.clear()
        discount = Decimal(str(self.rng.choice((1, 1, 0.95, 0.9, 0.85))))
        value = (story.deal.value * discount / 50).quantize(Decimal("1")) * 50
        story.deal = services.lead_convert_to_customer(lead=story.lead, deal_value=value,
                             currency="EUR", by=story.owner, at=moment)

    def step_upsell(self, story, moment):
        services.deal_open(lead=story.lead, value=Decimal(self.rng.randrange(1200, 9000, 100)),
                currency="EUR", product=self.rng.choice(data.UPSELL_PRODUCTS), by=story.owner,
                expected_close_on=(moment + timedelta(days=self.rng.randint(20, 45))).date(), at=moment)

    def step_lose_deal(self, story, moment):
        reason = self.rng.choice(data.DEAL_LOST_REASONS)
        services.deal_mark_lost(deal=story.deal, reason=reason, by=story.owner, at=moment)
        # story.deal may be a fresh copy (from conversion): read back where the lead ended up.
        story.lead.refresh_from_db(fields=["status", "stage_entered_at", "lost_reason"])

    # --- Activities, objections and tasks ----------------------------------------------

    def before(self, story, moment):
        """A moment shortly before `moment` and after the previous step."""
        return moment - (moment - story.prev) * self.rng.uniform(0.05, 0.4)

    def log_call(self, story, moment, *, direction=None):
        outcome = self.rng.choices(*zip(*CALL_OUTCOMES))[0]
        direction = direction or self.rng.choice((Activity.Direction.OUTBOUND,) * 3 + (Activity.Direction.INBOUND,))
        inbound = direction == Activity.Direction.INBOUND and outcome == "connected"
        seconds = CALL_SECONDS.get(outcome)
        call = services.activity_log_call(lead=story.lead, by=story.owner, direction=direction, outcome=outcome,
            duration_seconds=self.rng.randint(*seconds) if seconds else None, occurred_at=moment,
            body=self.fill(self.rng.choice(data.INBOUND_CALL_BODIES if inbound else data.CALL_BODIES[outcome])))
        if outcome == "connected":
            self.maybe_objection(story, call, chance=0.12)

    def log_meeting(self, story, moment, kind, *, minutes, objection_chance):
        meeting = services.activity_log_meeting(lead=story.lead, by=story.owner, occurred_at=moment,
            body=self.fill(self.rng.choice(data.MEETING_BODIES[kind])), duration_seconds=self.rng.randint(*minutes) * 60)
        self.maybe_objection(story, meeting, chance=objection_chance)

    def maybe_objection(self, story, activity, *, chance):
        if self.rng.random() >= chance:
            return
        category = self.objection_category()
        words, answer = (self.fill(text) for text in self.rng.choice(data.OBJECTIONS[category]))
        answered = self.rng.random() < 0.6
        objection = services.objection_log(lead=story.lead, by=story.owner, category=category,
            lead_words=words, response=answer if answered else "", activity=activity, at=activity.occurred_at)
        story.open_objections.append((objection, answer))

    def objection_category(self):
        # Every category once first, so a small batch shows them all; then the usual mix.
        categories = list(OBJECTION_WEIGHTS)
        self.objections_logged += 1
        if self.objections_logged <= len(categories):
            return categories[self.objections_logged - 1]
        return self.rng.choices(categories, list(OBJECTION_WEIGHTS.values()))[0]

    def settle_objections(self, story):
        """Some objections get answered and resolved days later; the rest stay open."""
        for objection, answer in story.open_objections:
            if self.rng.random() < 0.35:
                later = objection.created_at + (self.now - MARGIN - objection.created_at) * self.rng.uniform(0.05, 0.5)
                services.objection_resolve(objection=objection, response=answer, by=story.owner, at=later)

    def add_notes(self, story):
        author = story.owner or self.users["manager"]
        for _ in range(self.rng.choice((0, 0, 1, 1, 2))):
            moment = self.between(story.lead.created_at, self.now - MARGIN)
            services.activity_add_note(lead=story.lead, by=author,
                    body=self.fill(self.rng.choice(data.NOTE_BODIES)), occurred_at=moment)

    def add_social_touches(self, story):
        """A few LinkedIn and X touches by the owner (the first owned leads get one each, so a small seed shows
        them); most leads get none."""
        if story.owner is None:
            return
        self.social_touches += 1
        for _ in range(1 if self.social_touches <= 3 else self.rng.choice((0, 0, 0, 0, 1, 2))):
            channel, action = self.rng.choice(SOCIAL_TOUCHES)
            services.activity_log_social(lead=story.lead, by=story.owner, channel=channel, social_action=action,
                                         occurred_at=self.between(story.lead.created_at, self.now - MARGIN))

    def add_follow_up_calls(self, story):
        """More calls after the first step: until the last step, or until now while the lead is open.

        Never before the first step, which may be the first call (the one that makes the lead Contacted).
        """
        if story.owner is None or not story.moments:
            return
        is_open = story.lead.status in OPEN_STATUSES
        end = self.now - MARGIN if is_open else story.moments[-1]
        for _ in range(self.rng.randint(0, 3 if is_open else 2)):
            self.log_call(story, self.between(story.moments[0], end))

    def add_done_task(self, story, kind, moment):
        if self.rng.random() < 0.3:
            return
        due = moment + timedelta(days=self.rng.uniform(1, 3))
        done = min(moment + timedelta(days=self.rng.uniform(0.1, 2.5)), self.now - MARGIN)
        task = self.task(story, kind, moment, due, assignee=story.owner)
        services.task_complete(task=task, by=story.owner, at=done)

    def add_open_task(self, story):
        """The next thing to do on an open lead, planned around now (when the demo is seeded, so right after
        `make run`): a few overdue by hours or days, some due later today, most in the coming days."""
        lead = story.lead
        if lead.status not in OPEN_STATUSES or self.rng.random() < 0.2:
            return
        kind = {S.NEW: "first_call", S.SQL: "sql", S.OPPORTUNITY: "deal"}.get(lead.status, "follow_up")
        assignee = story.owner
        if assignee is None:
            if lead.status != S.NEW:
                return
            kind, assignee = "assign", self.users["manager"]
        created = self.between(story.prev, self.now - MARGIN, upto=0.3)
        pick, hour = self.rng.random(), self.rng.randint(9, 17)
        overdue = self.now - timedelta(hours=self.rng.uniform(1, OVERDUE_AT_MOST / timedelta(hours=1)))
        if pick < 0.25 and overdue > created + timedelta(hours=1):
            due = overdue
        elif pick < 0.45:
            due = datetime.combine(self.today, clock_time(hour), tzinfo=timezone.get_current_timezone())
        else:
            due = datetime.combine(self.today + timedelta(days=self.rng.randint(1, 10)), clock_time(hour),
                                   tzinfo=timezone.get_current_timezone())
        self.task(story, kind, created, due, assignee=assignee)

    def task(self, story, kind, created, due, *, assignee):
        title = self.rng.choice(data.TASK_TITLES[kind]).format(name=story.lead.full_name or story.lead.phone)
        return services.task_create(assignee=assignee, title=title, due_at=due, lead=story.lead,
                       by=assignee, allow_past_due=True, at=created)

    # --- Helpers ------------------------------------------------------------------------

    def between(self, start, end, *, upto=1.0):
        return start + max(end - start, timedelta(0)) * self.rng.uniform(0, upto)

    def fill(self, text):
        return text.format(
            tool=self.rng.choice(data.TOOLS), role=self.rng.choice(data.ROLES_TO_INVOLVE),
            count=self.rng.randint(3, 12), month=self.rng.choice(data.MONTHS), quarter=self.rng.randint(1, 4))


def slugify(text, sep="-"):
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return sep.join("".join(c for c in word if c.isalnum()) for word in ascii_text.split())


class Command(BaseCommand):
    help = "Load demo users, campaigns and a few hundred leads with their history (for a fresh install)."

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=300, help="How many leads to create (default 300).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed: the same seed gives the same data.")
        when_leads_exist = parser.add_mutually_exclusive_group()
        when_leads_exist.add_argument("--if-empty", action="store_true", help="Do nothing if any lead exists.")
        when_leads_exist.add_argument("--force", action="store_true", help="Add another batch even if leads exist.")

    def handle(self, *args, leads, seed, if_empty, force, **options):
        existing = Lead.objects.count()
        if existing and if_empty:
            self.stdout.write(f"Demo data is already there ({existing} lead{'s' if existing > 1 else ''}): nothing to do.")
            return
        if existing and not force:
            raise CommandError(
                f"The database already has {existing} lead{'s' if existing > 1 else ''}. "
                "Run with --force to add another batch of demo "
                "leads next to them, or --if-empty to do nothing when leads exist.")
        if leads < 1:
            raise CommandError("--leads must be at least 1.")
        password = os.environ.get("CRM_DEMO_PASSWORD") or DEFAULT_PASSWORD
        seeder = DemoSeeder(rng=random.Random(seed), now=timezone.now(), password=password)
        started = time.perf_counter()
        try:
            with transaction.atomic():
                seeder.run(leads)
        except ValidationError as exc:
            raise CommandError(f"The demo data could not be written, so nothing was saved: {exc}") from exc
        self.write_summary(leads, time.perf_counter() - started)
        self.write_logins(seeder, password)

    def write_summary(self, created, seconds):
        self.stdout.write(self.style.SUCCESS(f"Created {created} demo leads in {seconds:.1f} s."))
        stages = dict(Lead.objects.live().order_by().values_list("status").annotate(n=Count("id")))
        self.stdout.write("Leads per stage (whole database):")
        for status in (*FUNNEL, S.LOST, S.DISQUALIFIED):
            self.stdout.write(f"  {S(status).label:<14}{stages.get(status, 0):>5}")
        deals = dict(Deal.objects.order_by().values_list("status").annotate(n=Count("id")))
        self.stdout.write(
            f"Deals: {deals.get(Deal.Status.WON, 0)} won, {deals.get(Deal.Status.LOST, 0)} lost, "
            f"{deals.get(Deal.Status.OPEN, 0)} open")
        kinds = dict(Activity.objects.order_by().values_list("kind").annotate(n=Count("id")))
        now = timezone.now()
        tasks = Task.objects.aggregate(
            done=Count("id", filter=Q(completed_at__isnull=False)),
            overdue=Count("id", filter=Q(completed_at__isnull=True, due_at__lt=now)),
            today=Count("id", filter=Q(completed_at__isnull=True, due_at__date=timezone.localdate(now))))
        self.stdout.write(
            f"Activities: {kinds.get('call', 0)} calls, {kinds.get('meeting', 0)} meetings, {kinds.get('note', 0)} notes; "
            f"objections: {Objection.objects.count()} ({Objection.objects.filter(is_resolved=True).count()} resolved); "
            f"open tasks: {tasks['overdue']} overdue, {tasks['today']} due today; {tasks['done']} tasks done.")

    def write_logins(self, seeder, password):
        logins = ", ".join(username for username, _ in DEMO_USERS)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Demo logins (password: {password}): {logins}"))
        kept = [u for u, _ in DEMO_USERS if u not in seeder.new_users]
        if kept:
            self.stdout.write(f"Already existed and left unchanged (their own password still applies): {', '.join(kept)}")
