"""A deal history import: the sample "sales opportunities" file becomes leads, stage changes, deals and customers
with their real dates; impossible rows are refused; a second import doubles nothing. Given / when / then."""

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone
from openpyxl import Workbook

from core.events import EventType
from core.models import ActorKind, DomainEvent
from core.roles import Role
from imports.models import LeadImport
from imports.services import lead_import_check, lead_import_configure, lead_import_preview, lead_import_run
from leads.models import Company, Customer, Deal, Lead, StageChange
from leads.pipeline import LeadStatus
from outbound.fanout import deliveries_fan_out
from outbound.models import Delivery, Endpoint
from tests.factories import LeadFactory, UserFactory

from .conftest import csv_bytes, upload

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parents[2] / "imports" / "samples" / "sales_pipeline.csv"
HEADER = ["opportunity_id", "sales_agent", "product", "account", "deal_stage", "engage_date", "close_date", "close_value"]
STAGES = {"Prospecting": "sql", "Engaging": "opportunity", "Won": "won", "Lost": "lost"}


@pytest.fixture
def agents(db):
    """The sample's sales agents: found by full name, username or email."""
    return {
        name: UserFactory(username=name.split()[0].lower(), first_name=name.split()[0], last_name=name.split()[1],
                          role=Role.SALES_REP)
        for name in ("Moses Frase", "Darcel Schlecht", "Zane Levy", "Anna Snelling")
    }


def local(day: str) -> datetime:
    """Midnight of a date where the team works (TIME_ZONE): how a date of the file is read."""
    return timezone.make_aware(datetime.combine(date.fromisoformat(day), time.min), timezone.get_current_timezone())


def elapsed(start: str, end: str) -> timedelta:
    """The time between two local midnights as clocks measure it (an hour more or less across a DST change)."""
    return local(end).astimezone(UTC) - local(start).astimezone(UTC)


def deals_job(data: bytes, *, by, name="pipeline.csv", stages=STAGES, **options):
    job = upload(data, by=by, name=name, target=LeadImport.Target.DEALS)
    return lead_import_configure(job=job, by=by, stage_mapping=stages, date_format="%Y-%m-%d", **options)


def rows_file(*rows) -> bytes:
    return csv_bytes([HEADER, *rows])


def test_the_preview_lists_the_files_stages_with_their_counts_and_guesses_what_they_stand_for(manager_user, agents):
    job = upload(SAMPLE.read_bytes(), by=manager_user, name="sales_pipeline.csv", target=LeadImport.Target.DEALS)

    preview = lead_import_preview(job=job)

    assert preview.stages == [("Won", 5), ("Lost", 2), ("Engaging", 2), ("Prospecting", 1)]
    assert preview.stage_mapping == {"Won": "won", "Lost": "lost", "Engaging": "opportunity", "Prospecting": "sql"}
    assert preview.mapping == {
        "opportunity_id": "opportunity_id", "sales_agent": "owner", "product": "product", "account": "account",
        "deal_stage": "stage", "engage_date": "engaged_on", "close_date": "closed_on", "close_value": "value",
    }
    assert preview.date_formats == ["%Y-%m-%d"]


def test_the_sample_becomes_leads_deals_and_customers_with_their_real_dates(manager_user, agents):
    job = deals_job(SAMPLE.read_bytes(), by=manager_user)

    job = lead_import_run(job=job, by=manager_user)

    assert (job.status, job.created_count, job.error_count, job.rows_total) == (LeadImport.Status.DONE, 10, 0, 10)
    won = Lead.objects.get(external_ref="1C1I7A6R")
    assert (won.status, won.email, won.phone, won.company.name, won.owner) == (
        LeadStatus.CUSTOMER, "", "", "Cancity", agents["Moses Frase"])
    assert won.created_at == local("2025-10-20") and won.stage_entered_at == local("2025-11-02")
    history = list(won.stage_changes.order_by("changed_at", "id").values_list("from_status", "to_status", "changed_at"))
    assert history == [("", "new", local("2025-10-20")), ("new", "opportunity", local("2025-10-20")),
                       ("opportunity", "customer", local("2025-11-02"))]
    deal = won.deals.get()
    assert (deal.status, deal.value, deal.product, deal.currency) == (Deal.Status.WON, Decimal("1054"), "GTX Plus Basic", "EUR")
    assert (deal.created_at, deal.closed_at) == (local("2025-10-20"), local("2025-11-02"))
    assert deal.time_to_close == elapsed("2025-10-20", "2025-11-02")  # 13 days (and an hour where clocks went back)
    # Cancity won twice: one customer, a customer since its first win.
    cancity = Customer.objects.get(company__name="Cancity")
    assert cancity.became_customer_at == local("2025-11-02")
    assert set(Deal.objects.filter(lead__company__name="Cancity").values_list("customer", flat=True)) == {cancity.pk}
    assert Company.objects.filter(name="Cancity").count() == 1


def test_the_reports_read_right_from_the_imported_history(manager_user, agents):
    lead_import_run(job=deals_job(SAMPLE.read_bytes(), by=manager_user), by=manager_user)

    won, lost = Deal.objects.filter(status="won"), Deal.objects.filter(status="lost")
    assert won.count() / (won.count() + lost.count()) == 5 / 7  # win rate
    assert won.aggregate(total=Sum("value"))["total"] / won.count() == Decimal("1344.6")  # average deal size
    open_deals = Deal.objects.filter(status="open")
    assert sorted(open_deals.values_list("lead__status", flat=True)) == ["opportunity", "opportunity", "sql"]
    assert set(open_deals.values_list("closed_at", "value")) == {(None, Decimal("0"))}
    lost_lead = Lead.objects.get(external_ref="KWVA7VR1")
    assert (lost_lead.status, lost_lead.stage_entered_at, lost_lead.lost_reason) == ("lost", local("2025-11-30"), "Deal lost (Lost)")
    # cohorts: leads created in October 2025 that reached Customer by now
    october = Lead.objects.filter(created_at__gte=local("2025-10-01"), created_at__lt=local("2025-11-01"))
    reached = StageChange.objects.filter(lead__in=october, to_status="customer").values("lead").distinct().count()
    assert (october.count(), reached) == (7, 5)


def test_the_history_is_in_the_event_log_at_its_real_dates_marked_as_imported_and_sent_to_no_webhook(manager_user, agents):
    Endpoint.objects.create(url="https://hooks.example.com/crm", secret="whsec_x",
                            event_types=["lead.created", "stage.changed", "deal.created", "deal.won", "deal.lost"])
    job = lead_import_run(job=deals_job(SAMPLE.read_bytes(), by=manager_user), by=manager_user)

    won = Lead.objects.get(external_ref="1C1I7A6R")
    events = DomainEvent.objects.filter(lead_id=won.pk).order_by("occurred_at", "id")
    assert [(e.type, e.occurred_at) for e in events] == [
        (EventType.LEAD_CREATED, local("2025-10-20")), (EventType.STAGE_CHANGED, local("2025-10-20")),
        (EventType.DEAL_CREATED, local("2025-10-20")), (EventType.STAGE_CHANGED, local("2025-11-02")),
        (EventType.DEAL_WON, local("2025-11-02")),
    ]
    assert {(e.actor_kind, e.actor_user_id, e.actor_ref["import_job"], e.actor_ref["history"]) for e in events} == {
        (ActorKind.IMPORT_JOB, manager_user.pk, job.pk, True)}
    with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=False):
        read = deliveries_fan_out()
        LeadFactory(by=manager_user)  # a live lead afterwards is delivered as ever
    with time_machine.travel(timezone.now() + timedelta(minutes=10), tick=False):
        deliveries_fan_out()
    assert read == DomainEvent.objects.count() - 1
    assert list(Delivery.objects.values_list("event_type", flat=True)) == ["lead.created"]


def test_impossible_rows_are_refused_with_their_reason_and_the_dry_run_writes_nothing(manager_user, agents):
    data = rows_file(
        ["A1", "Moses Frase", "GTX", "Acme", "Won", "2025-10-20", "2025-11-02", "100"],
        ["A2", "Moses Frase", "GTX", "Acme", "Won", "2025-10-20", "2025-10-19", "100"],
        ["A3", "Moses Frase", "GTX", "Acme", "Won", "2025-10-20", "2025-11-02", ""],
        ["A4", "Moses Frase", "GTX", "Acme", "Lost", "2025-10-20", "", ""],
        ["A5", "Moses Frase", "GTX", "Acme", "Won", "2025-10-20", "2026-04-01", "100"],
        ["A6", "Moses Frase", "GTX", "Acme", "On hold", "2025-10-20", "", ""],
        ["A7", "Nobody Known", "GTX", "Acme", "Engaging", "2025-10-20", "", ""],
        ["A8", "Moses Frase", "GTX", "Acme", "Engaging", "2025-10-20", "", "=1+2"],
        ["A1", "Moses Frase", "GTX", "Acme", "Won", "2025-10-20", "2025-11-02", "100"],
        ["A9", "Moses Frase", "GTX", "Acme", "Engaging", "", "", ""],
        ["A10", "Moses Frase", "GTX", "Acme", "Won", "2025-10-20", "2025-11-02", "-5"],
    )

    job = lead_import_check(job=deals_job(data, by=manager_user), by=manager_user)

    assert (job.status, job.created_count, job.skipped_count, job.error_count) == (LeadImport.Status.CHECKED, 1, 1, 9)
    fates = {row["row"]: (row["fate"], row["reason"]) for row in job.report_rows}
    assert fates[3] == ("error", "close_date: The deal closes before it was engaged.")
    assert fates[4] == ("error", "close_value: A won deal needs its value.")
    assert fates[5] == ("error", "close_date: A lost deal needs its close date.")
    assert fates[6] == ("error", "close_date: A won deal cannot close in the future.")
    assert fates[7] == ("error", "deal_stage: the stage 'On hold' is not mapped to a pipeline stage, won or lost")
    assert fates[8][0] == "error" and "'Nobody Known' is no user who can own deals" in fates[8][1]
    assert fates[9][0] == "error" and "formulas are not imported" in fates[9][1]
    assert fates[10] == ("skip", "same opportunity id as row 2")
    assert fates[11] == ("error", "engage_date: Give the date the deal was engaged (created).")
    assert fates[12] == ("error", "close_value: A deal value cannot be negative.")
    assert (Lead.objects.count(), Deal.objects.count(), Company.objects.count()) == (0, 0, 0)
    with job.rejected_file.open("rb") as handle:
        rejected = list(csv.reader(io.StringIO(handle.read().decode())))
    assert [r[0] for r in rejected[1:]] == ["A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9", "A10"]
    assert rejected[7][7] == "'=1+2"  # formula-safe


def test_importing_the_same_file_again_doubles_nothing(manager_user, agents):
    lead_import_run(job=deals_job(SAMPLE.read_bytes(), by=manager_user), by=manager_user)
    counts = (Lead.objects.count(), Deal.objects.count(), StageChange.objects.count(), Customer.objects.count(),
              Company.objects.count(), DomainEvent.objects.count())

    again = lead_import_check(job=deals_job(SAMPLE.read_bytes(), by=manager_user), by=manager_user)
    assert (again.created_count, again.skipped_count) == (0, 10)
    assert again.report_rows[0]["reason"].startswith("opportunity 1C1I7A6R was already imported (lead #")
    again = lead_import_run(job=again, by=manager_user)

    assert (again.status, again.created_count, again.skipped_count) == (LeadImport.Status.DONE, 0, 10)
    assert (Lead.objects.count(), Deal.objects.count(), StageChange.objects.count(), Customer.objects.count(),
            Company.objects.count(), DomainEvent.objects.count()) == counts


def test_an_unknown_owner_can_be_given_to_the_importer_and_owners_are_found_by_username_or_email(manager_user, agents):
    data = rows_file(
        ["B1", "Someone Gone", "GTX", "Acme", "Engaging", "2025-10-20", "", ""],
        ["B2", "zane", "GTX", "Acme", "Engaging", "2025-10-20", "", ""],
        ["B3", "ANNA@example.com", "GTX", "Acme", "Engaging", "2025-10-20", "", ""],
        ["B4", "", "GTX", "Acme", "Engaging", "2025-10-20", "", ""],
    )
    agents["Anna Snelling"].email = "anna@example.com"
    agents["Anna Snelling"].save()

    lead_import_run(job=deals_job(data, by=manager_user, unknown_owner="importer"), by=manager_user)

    owners = dict(Lead.objects.values_list("external_ref", "owner"))
    assert owners == {"B1": manager_user.pk, "B2": agents["Zane Levy"].pk, "B3": agents["Anna Snelling"].pk, "B4": None}


def test_a_marketer_cannot_take_the_deals_of_unknown_owners(marketer_user):
    job = upload(SAMPLE.read_bytes(), by=marketer_user, name="p.csv", target=LeadImport.Target.DEALS)

    with pytest.raises(ValidationError) as exc:
        lead_import_configure(job=job, by=marketer_user, unknown_owner="importer", date_format="%Y-%m-%d")

    assert "You cannot own deals" in exc.value.message_dict["unknown_owner"][0]


def test_a_stage_mapped_to_something_else_than_a_stage_won_or_lost_is_refused(manager_user):
    job = upload(SAMPLE.read_bytes(), by=manager_user, name="p.csv", target=LeadImport.Target.DEALS)

    with pytest.raises(ValidationError) as exc:
        lead_import_configure(job=job, by=manager_user, stage_mapping={"Won": "customer"}, date_format="%Y-%m-%d")

    assert exc.value.message_dict["stage_mapping"] == [
        "Map the stage 'Won' to one of: new, contacted, nurturing, mql, sql, opportunity, won, lost."]


def test_contacts_come_with_their_deal_and_an_email_already_taken_refuses_the_row(manager_user, agents):
    LeadFactory(email="taken@example.com", by=manager_user)
    header = [*HEADER, "email", "name", "phone"]
    data = csv_bytes([
        header,
        ["C1", "zane", "GTX", "Acme", "Won", "2025-10-20", "2025-10-30", "10", "Ada@Example.com", "Ada Lovelace", ""],
        ["C2", "zane", "GTX", "Acme", "Won", "2025-10-20", "2025-10-30", "10", "taken@example.com", "", ""],
        ["C3", "zane", "GTX", "Acme", "Won", "2025-10-20", "2025-10-30", "10", "ada@example.com", "", ""],
        ["C4", "zane", "GTX", "Acme", "Lost", "2025-10-20", "2025-10-30", "", "", "Bob", "+33 6 12 34 56 78"],
    ])

    job = lead_import_run(job=deals_job(data, by=manager_user), by=manager_user)

    assert (job.created_count, job.error_count) == (2, 2)
    ada = Lead.objects.get(external_ref="C1")
    assert (ada.email, ada.first_name, ada.last_name) == ("ada@example.com", "Ada", "Lovelace")
    assert Lead.objects.get(external_ref="C4").phone == "+33 6 12 34 56 78"
    reasons = {row["row"]: row["reason"] for row in job.report_rows}
    assert "taken@example.com is already the email of lead #" in reasons[3]
    assert "ada@example.com is already the email of row 2" in reasons[4]


def test_an_xlsx_file_with_typed_dates_and_numbers_imports_the_same(manager_user, agents, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    sheet.append(["X1", "Moses Frase", "GTX", "Acme", "Won", datetime(2025, 10, 20), datetime(2025, 11, 2), 1054.5])
    sheet.append(["X2", "Moses Frase", "GTX", "Acme", "Prospecting", datetime(2025, 12, 1), None, None])
    path = tmp_path / "pipeline.xlsx"
    book.save(path)

    job = lead_import_run(job=deals_job(path.read_bytes(), by=manager_user, name="pipeline.xlsx"), by=manager_user)

    assert (job.created_count, job.error_count) == (2, 0)
    deal = Deal.objects.get(lead__external_ref="X1")
    assert (deal.value, deal.created_at, deal.closed_at) == (Decimal("1054.5"), local("2025-10-20"), local("2025-11-02"))
    assert Lead.objects.get(external_ref="X2").status == LeadStatus.SQL


def test_dates_across_a_daylight_saving_change_are_the_teams_local_midnights(manager_user, agents):
    data = rows_file(["D1", "zane", "GTX", "Acme", "Won", "2025-03-29", "2025-10-27", "10"])

    lead_import_run(job=deals_job(data, by=manager_user), by=manager_user)

    deal = Deal.objects.get()
    assert timezone.localtime(deal.created_at).time() == time.min == timezone.localtime(deal.closed_at).time()
    assert (timezone.localdate(deal.created_at), timezone.localdate(deal.closed_at)) == (date(2025, 3, 29), date(2025, 10, 27))
    assert deal.time_to_close == elapsed("2025-03-29", "2025-10-27")


def test_the_command_imports_a_deal_history_with_its_stages(manager_user, agents, capsys):
    call_command("import_leads", str(SAMPLE), "--kind", "deals", "--by", manager_user.username, "--dry-run")
    out = capsys.readouterr().out
    assert "stage 'Prospecting' (1 rows) -> sql" in out and "Would create 10, updated 0, skipped 0, refused 0." in out
    assert Deal.objects.count() == 0

    call_command("import_leads", str(SAMPLE), "--kind", "deals", "--by", manager_user.username,
                 "--stage", "Prospecting=mql", "--currency", "usd")

    assert Deal.objects.count() == 10 and set(Deal.objects.values_list("currency", flat=True)) == {"USD"}
    assert Lead.objects.get(external_ref="S8DX3XOU").status == LeadStatus.MQL
