"""The three roles exist as groups, with the permissions their work needs."""

import pytest
from django.contrib.auth.models import Group, Permission

from core.roles import Role, user_can_export_personal_data, user_has_role, user_is_manager
from tests.factories import UserFactory, manager, rep

pytestmark = pytest.mark.django_db


def test_the_data_migration_creates_the_three_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= {r.value for r in Role}


@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [
        (
            Role.MANAGER,
            ["leads.change_lead", "leads.delete_deal", "leads.change_campaign", "leads.view_stagechange", "leads.export_lead",
             "leads.view_leadexport", "leads.view_leadmerge", "nurturing.send_as_others", "core.view_domainevent", "capture.change_assignmentrule"],
            ["leads.change_leadexport", "leads.change_leadmerge", "leads.delete_leadmerge", "leads.delete_leadexport", "core.change_domainevent", "core.delete_domainevent"],
        ),
        (
            Role.SALES_REP,
            ["leads.add_lead", "leads.change_lead", "leads.add_activity", "leads.add_objection", "leads.add_task", "leads.add_deal"],
            ["leads.delete_lead", "leads.change_campaign", "leads.change_stagechange", "leads.add_campaignspend", "leads.export_lead",
             "core.view_domainevent", "capture.change_captureform", "capture.change_quarantine", "traffic.view_pageview"],
        ),
        (
            Role.MARKETER,
            ["leads.view_lead", "leads.add_campaign", "leads.add_campaignspend", "leads.change_persona", "leads.add_source",
             "capture.add_captureform", "capture.change_quarantine", "leads.add_conversionkind", "traffic.view_trafficdaily"],
            ["leads.change_lead", "leads.add_activity", "leads.delete_lead", "leads.change_deal", "leads.export_lead",
             "leads.view_leadexport", "leads.view_leadmerge", "nurturing.send_as_others", "core.view_domainevent",
             "capture.change_assignmentrule"],
        ),
    ],
)
def test_each_role_has_the_permissions_its_work_needs_and_no_more(role, allowed, refused):
    user = UserFactory(role=role)
    for perm in allowed:
        assert user.has_perm(perm), perm
    for perm in refused:
        assert not user.has_perm(perm), perm


def test_role_checks_follow_the_groups(manager_user, rep_user):
    assert user_is_manager(manager_user)
    assert not user_is_manager(rep_user)
    assert user_has_role(rep_user, Role.SALES_REP)
    rep_user.is_active = False
    assert not user_has_role(rep_user, Role.SALES_REP)


def test_exporting_personal_data_is_for_the_export_permission_by_group_or_by_user_asked_in_one_query(
        django_assert_num_queries):
    boss, seller, granted = manager(username="boss"), rep(username="seller"), rep(username="granted")
    granted.user_permissions.add(Permission.objects.get(codename="export_lead"))
    former = manager(username="former", is_active=False)

    with django_assert_num_queries(1):
        assert user_can_export_personal_data(boss)
    assert not user_can_export_personal_data(seller)
    assert user_can_export_personal_data(granted)
    assert not user_can_export_personal_data(former)
    assert user_can_export_personal_data(UserFactory(username="root", is_superuser=True))


def test_once_the_permissions_are_read_asking_about_exports_makes_no_query(django_assert_num_queries):
    boss = manager(username="boss")
    boss.has_perm("leads.view_lead")  # as the admin does on each page

    with django_assert_num_queries(0):
        assert user_can_export_personal_data(boss)
