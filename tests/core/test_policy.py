"""The permission policy asked directly: who counts as what, and what each refusal says.

test_access.py walks the pages as each role; these tests pin the policy's own
answers, including the users no page test can be (an inactive account, a
superuser without a role) and the reasons a refusal gives.
"""

import pytest
import time_machine
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from core.policy import Access, access_for
from leads.models import Lead
from leads.services import lead_archive
from tests.factories import LeadFactory, UserFactory, manager, marketer, rep

pytestmark = pytest.mark.django_db

# Everything these tests create is created at this moment; the policy itself has no clock.
MOMENT = "2026-03-02 09:00Z"


@pytest.fixture
def frozen():
    with time_machine.travel(MOMENT, tick=False):
        yield


def test_an_anonymous_visitor_has_no_role_and_sees_no_lead(frozen):
    LeadFactory(owner=None)
    visitor = AnonymousUser()

    access = access_for(visitor)

    assert access == Access(visitor, False, False, False)
    assert not access.has_workspace
    assert not access.leads(Lead.objects.live()).exists()


def test_an_inactive_rep_has_no_role_and_sees_not_even_their_own_leads(frozen):
    former = rep(username="former", is_active=False)
    theirs = LeadFactory(owner=former)

    access = access_for(former)

    assert access == Access(former, False, False, False)
    assert not access.leads(Lead.objects.live()).exists()
    assert not access.can_see(theirs)


def test_a_superuser_without_a_role_works_every_lead_as_a_manager(frozen):
    root = UserFactory(username="root", is_superuser=True)
    someone_elses = LeadFactory(owner=rep(username="rep9"))

    access = access_for(root)

    assert access == Access(root, True, False, False)
    assert access.can_see(someone_elses) and access.can_work(someone_elses)


def test_a_users_access_is_worked_out_once_with_one_query(frozen, django_assert_num_queries):
    user = rep(username="rep7")

    with django_assert_num_queries(1):
        first = access_for(user)
    with django_assert_num_queries(0):
        again = access_for(user)

    assert again is first
    assert first.is_rep


def test_an_archived_lead_is_hidden_even_from_a_manager(frozen):
    boss = manager(username="boss")
    lead = LeadFactory(owner=boss)
    lead_archive(leads=[lead])
    lead.refresh_from_db()

    access = access_for(boss)

    assert not access.can_see(lead)
    with pytest.raises(Http404, match=r"^No such lead\.$"):
        access.check(lead, "view")


def test_a_rep_changes_a_pool_leads_sequences_only_after_claiming_it(frozen):
    seller = rep(username="seller")
    lead = LeadFactory(owner=None)
    access = access_for(seller)

    assert access.can_see(lead)
    with pytest.raises(PermissionDenied, match="Only the lead's owner, a marketer or a manager can change its sequences"):
        access.check(lead, "enroll")

    lead.owner = seller
    access.check(lead, "enroll")


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("work", "Only the lead's owner (or a manager) can do this. Claim the lead first if it is in the unassigned pool."),
        ("claim", "Only unassigned leads can be claimed, by a sales rep or a manager."),
    ],
)
def test_a_refusal_says_who_may_do_it(frozen, action, reason):
    lead = LeadFactory(owner=rep(username="owner"))
    access = access_for(marketer(username="mkt"))

    with pytest.raises(PermissionDenied) as refused:
        access.check(lead, action)

    assert str(refused.value) == reason


def test_the_owner_choice_list_holds_exactly_the_users_the_policy_lets_own_leads(frozen):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from core.policy import lead_owner_candidates
    from leads.selectors import lead_owner_choices

    users = {
        "rep": rep(username="a_rep"),
        "manager": manager(username="b_manager"),
        "marketer": marketer(username="c_marketer"),
        "superuser": UserFactory(username="d_root", is_superuser=True),
        "inactive rep": rep(username="e_gone", is_active=False),
        "no role": UserFactory(username="f_nobody"),
    }
    # A model permission given by hand does not make a role.
    users["no role"].user_permissions.add(Permission.objects.get(codename="change_lead"))

    owners = [name for name, user in users.items() if access_for(get_user_model().objects.get(pk=user.pk)).owns_leads]
    assert owners == ["rep", "manager", "superuser"]
    assert [u.username for u in lead_owner_choices()] == ["a_rep", "b_manager", "d_root"]
    assert lead_owner_candidates(get_user_model().objects.filter(username__startswith="a_")).count() == 1


@pytest.mark.parametrize("make", [rep, manager, marketer])
def test_the_visible_leads_are_the_same_whether_the_owner_is_read_from_its_index_or_from_each_row(frozen, make):
    user = make(username="viewer")
    other = rep(username="another")
    mine, pool, theirs = LeadFactory(owner=user), LeadFactory(owner=None), LeadFactory(owner=other)
    access = access_for(user)

    by_index = set(access.leads(Lead.objects.live()).values_list("pk", flat=True))
    by_row = set(access.leads(Lead.objects.live(), owner_index=False).values_list("pk", flat=True))

    assert by_index == by_row
    assert by_index == ({mine.pk, pool.pk} if make is rep else {mine.pk, pool.pk, theirs.pk})
