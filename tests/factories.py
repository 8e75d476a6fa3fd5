"""factory-boy factories for the whole suite.

Leads are created through `leads.services.lead_create`, so every factory-made
lead has the same invariants (normalised email, search text, first stage
change) as one made by a person.
"""

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from core.roles import Role
from leads import services
from leads.models import Campaign, Company, Persona, Source


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password("pw")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get(name=Role(extracted).value))
            if extracted in (Role.MANAGER, Role.MARKETER):
                self.is_staff = True
                self.save(update_fields=["is_staff"])


def rep(**kwargs):
    return UserFactory(role=Role.SALES_REP, **kwargs)


def manager(**kwargs):
    return UserFactory(role=Role.MANAGER, **kwargs)


def marketer(**kwargs):
    return UserFactory(role=Role.MARKETER, **kwargs)


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    name = factory.Faker("company")
    domain = factory.Faker("domain_name")


class SourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Source
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Source {n}")
    slug = factory.Sequence(lambda n: f"source-{n}")
    medium = "cpc"


class PersonaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Persona
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Persona {n}")
    role = "Head of Sales"


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Campaign {n}")
    slug = factory.Sequence(lambda n: f"campaign-{n}")
    source = factory.SubFactory(SourceFactory)


class LeadFactory(factory.Factory):
    """Builds the keyword arguments and calls the lead_create service."""

    class Meta:
        model = dict

    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.Sequence(lambda n: f"lead{n}@example.org")
    phone = ""
    company = factory.SubFactory(CompanyFactory)

    @classmethod
    def _create(cls, model_class, *args, by=None, score=None, **kwargs):
        lead = services.lead_create(by=by, **kwargs)
        if score is not None:  # as the scoring app would have stored it: nobody types a score
            type(lead).objects.filter(pk=lead.pk).update(score=score)
            lead.score = score
        return lead

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        return kwargs


def lead_at(status, *, by=None, **kwargs):
    """A lead walked along the pipeline to `status` through the services."""
    from leads.pipeline import LeadStatus

    lead = LeadFactory(**kwargs)
    path = {
        LeadStatus.NEW: [],
        LeadStatus.CONTACTED: ["contacted"],
        LeadStatus.NURTURING: ["nurturing"],
        LeadStatus.MQL: ["nurturing", "mql"],
        LeadStatus.SQL: ["nurturing", "mql", "sql"],
        LeadStatus.OPPORTUNITY: ["nurturing", "mql", "sql", "opportunity"],
        LeadStatus.LOST: ["contacted", "lost"],
        LeadStatus.DISQUALIFIED: ["disqualified"],
    }
    if status == LeadStatus.CUSTOMER:
        services.lead_convert_to_customer(lead=lead, deal_value=1000, by=by)
        return lead
    for step in path[LeadStatus(status)]:
        services.lead_change_stage(lead=lead, to_status=step, by=by, reason="test")
    return lead


def sales_records(*, lead, by):
    """One of each sales record on `lead` through the services: a deal, a task, a call with an objection,
    and a customer (another lead converted)."""
    services.deal_open(lead=lead, value=100, by=by)
    services.task_create(assignee=by, title="Follow up", due_at=in_a_day(), lead=lead, by=by)
    call = services.activity_log_call(lead=lead, by=by, direction="outbound", outcome="connected")
    services.objection_log(lead=lead, by=by, category="price", lead_words="Too dear", activity=call)
    services.lead_convert_to_customer(lead=LeadFactory(owner=by), deal_value=1000, by=by)


def in_a_day():
    return timezone.now() + timedelta(days=1)


# --- Nurturing ------------------------------------------------------------------------


def sequence_with_steps(*steps, status="active", **fields):
    """An active sequence with email steps; each step is a dict of Step fields (defaults fill the rest)."""
    from datetime import time as clock

    from nurturing.models import Sequence, Step

    sequence = Sequence.objects.create(name=fields.pop("name", "Welcome"), status=status, **fields)
    for position, step in enumerate(steps or [{}], start=1):
        values = {
            "kind": Step.Kind.EMAIL,
            "delay": timedelta(0),
            "send_days": "0123456",
            "window_start": clock(0, 0),
            "window_end": clock(23, 59, 59),
            "subject_template": f"Step {position} for {{{{ first_name|default:'there' }}}}",
            "text_template": f"Hello {{{{ first_name|default:'there' }}}}, this is step {position}.",
            **step,
        }
        Step.objects.create(sequence=sequence, position=position, **values)
    return sequence


class ContentBlockFactory(factory.Factory):
    """A block of the content library saved through content_block_save; `personas` set after it, as the admin does."""

    class Meta:
        model = dict

    kind = "case_study"
    title = factory.Sequence(lambda n: f"Case study {n}")
    body = "Forecasts within 5% after one quarter."
    attribution_name = "Ana Ruiz"
    attribution_role = "CFO"
    attribution_company = "Acme"

    @classmethod
    def _create(cls, model_class, *args, personas=(), by=None, **kwargs):
        from nurturing.content_services import content_block_save
        from nurturing.models import ContentBlock

        block = content_block_save(block=ContentBlock(**kwargs), by=by)
        block.personas.set(personas)
        return block

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        return kwargs
