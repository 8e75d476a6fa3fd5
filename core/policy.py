"""The permission policy: who may see and do what on a lead, asked by every entry point.

The reps' pages and the lead services (with the acting user) ask here; it sits
below every app so that the admin and an API get the same answers. By role:

- Sales reps see their own leads and the unassigned pool. They work (log
  calls, objections, notes, meetings, tasks, move stages, convert, enroll)
  only their own leads; a pool lead is claimed first.
- Managers see and work every lead.
- Marketers read every lead and manage its sequence enrollments; they build
  the sequences (with managers). They do not log calls or move stages for a
  rep, with one exception: marking a lead MQL (marketing-qualified) is
  marketing's call, so they may move a lead to MQL.
- Tags: the lead's owner, managers and marketers put tags on a lead and take
  them off. Marketers tag any lead (one by one or many at once) because they
  build the audiences and triggers that tags feed (and they make a tag ahead
  of its first use, for a trigger to wait for); a rep tags only the leads
  they work, like every other change to a lead.
- Anyone else (no role) gets 403 on every page.

Pages ask for each request, GET and POST alike: a lead that is not visible is
a 404 (its existence is not revealed), a visible lead the user may not change
is a 403. Hiding links is only a convenience on top. The lead services ask
`check_may_work` / `check_may_manage_leads` for the acting user, so the admin
and any later API get the same refusal (a PermissionDenied with the reason).

It stands at the bottom of the project (core): it reads a lead's owner and
archive time and filters the querysets it is given, without importing the
apps above it.
"""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Q, Value
from django.db.models.functions import Coalesce
from django.http import Http404

from .roles import Role


@dataclass(frozen=True)
class Access:
    user: object
    is_manager: bool
    is_rep: bool
    is_marketer: bool

    @property
    def has_workspace(self) -> bool:
        return self.is_manager or self.is_rep or self.is_marketer

    @property
    def sees_all(self) -> bool:
        return self.is_manager or self.is_marketer

    @property
    def owns_leads(self) -> bool:
        """Can be given leads (and so claim them, and have a Today list)."""
        return self.is_manager or self.is_rep

    def leads(self, leads, *, owner_index: bool = True):
        """Those of `leads` (a queryset of live leads) this user may see.

        `owner_index=False` asks the same of each row instead of the owner index: where another index is the
        selective one (a search's trigram index), PostgreSQL would otherwise AND it with the owner index's
        bitmap of a fifth of all leads (the rep's own and the pool), which costs more than checking the
        owner of each match."""
        if self.sees_all:
            return leads
        if self.is_rep:
            if not owner_index:
                return leads.alias(owner_or_me=Coalesce("owner_id", Value(self.user.pk))).filter(
                    owner_or_me=self.user.pk)
            return leads.filter(Q(owner=self.user) | Q(owner__isnull=True))
        return leads.none()

    def lead_parts(self, leads) -> list:
        """The leads this user may see as disjoint parts, each answerable from the owner index on its own: a
        rep's own leads and the pool (counting both through one OR reads every lead of the index instead)."""
        if self.is_rep and not self.sees_all:
            return [leads.filter(owner=self.user), leads.filter(owner__isnull=True)]
        return [self.leads(leads)]

    def can_see(self, lead) -> bool:
        if lead.archived_at is not None:
            return False
        return self.sees_all or (self.is_rep and lead.owner_id in (None, self.user.pk))

    def can_work(self, lead) -> bool:
        """Log calls, objections, notes, meetings and tasks; move the stage; convert."""
        return self.is_manager or (self.is_rep and lead.owner_id == self.user.pk)

    def can_claim(self, lead) -> bool:
        return self.owns_leads and lead.owner_id is None

    def can_manage_enrollments(self, lead) -> bool:
        return self.is_manager or self.is_marketer or (self.is_rep and lead.owner_id == self.user.pk)

    @property
    def manages_campaigns(self) -> bool:
        """Create and change campaigns and record their spend (reps read them)."""
        return self.is_manager or self.is_marketer

    def can_record_conversions(self, lead) -> bool:
        """Record a conversion (a download, a signup) on the lead: marketing, managers, and the lead's owner."""
        return self.is_manager or self.is_marketer or (self.is_rep and lead.owner_id == self.user.pk)

    @property
    def tags_every_lead(self) -> bool:
        """Tag any lead, and make tags ahead of their use: marketers (who build audiences and triggers from tags)
        and managers."""
        return self.is_manager or self.is_marketer

    def can_tag(self, lead) -> bool:
        """Add or remove tags: the lead's owner, marketers and managers."""
        return self.tags_every_lead or (self.is_rep and lead.owner_id == self.user.pk)

    def can_move(self, lead, to_status: str) -> bool:
        """Move the lead to `to_status` (whether the pipeline allows the move is the stage service's rule)."""
        return self.can_work(lead) or (self.is_marketer and to_status == MQL)

    @property
    def changes_companies(self) -> bool:
        """Create and change companies (accounts): sales reps and managers; marketers read them."""
        return self.is_manager or self.is_rep

    def can_change_task(self, task) -> bool:
        """Change, snooze or complete a task: the person it is for, or a manager."""
        return self.is_manager or task.assignee_id == self.user.pk

    @property
    def builds_sequences(self) -> bool:
        """Create, edit, activate, pause and archive sequences and their steps."""
        return self.is_manager or self.is_marketer

    def check(self, lead, action: str) -> None:
        """Raise 404 for a lead the user cannot see, 403 for an action they may not take on it."""
        if not self.can_see(lead):
            raise Http404("No such lead.")
        allowed = {
            "view": True,
            "work": self.can_work(lead),
            "claim": self.can_claim(lead),
            "enroll": self.can_manage_enrollments(lead),
            "tag": self.can_tag(lead),
        }[action]
        if not allowed:
            raise PermissionDenied(_DENIED[action])


# The pipeline's stage value, named here to keep core below leads.
MQL = "mql"

_DENIED = {
    "work": "Only the lead's owner (or a manager) can do this. Claim the lead first if it is in the unassigned pool.",
    "claim": "Only unassigned leads can be claimed, by a sales rep or a manager.",
    "enroll": "Only the lead's owner, a marketer or a manager can change its sequences.",
    "move": "Only the lead's owner (or a manager) can move its stage; a marketer can mark it MQL. "
            "Claim the lead first if it is in the unassigned pool.",
    "sequences": "Only a marketer or a manager can build, start, pause or archive sequences.",
    "forms": "Only a marketer or a manager can build capture forms and release or discard what they held back.",
    "campaigns": "Only a marketer or a manager can create or change campaigns and their spend.",
    "conversions": "Only the lead's owner, a marketer or a manager can record a conversion on it.",
    "tag": "Only the lead's owner, a marketer or a manager can change its tags.",
}


def access_for(user) -> Access:
    """The user's access, worked out once per request (one query for the groups)."""
    cached = getattr(user, "_workspace_access", None)
    if cached is not None:
        return cached
    if not user.is_authenticated or not user.is_active:
        access = Access(user, False, False, False)
    elif user.is_superuser:
        access = Access(user, True, False, False)
    else:
        roles = set(user.groups.values_list("name", flat=True))
        access = Access(user, Role.MANAGER in roles, Role.SALES_REP in roles, Role.MARKETER in roles)
    user._workspace_access = access
    return access


def lead_owner_candidates(users):
    """Of `users` (a queryset of users), those who can be given leads: active sales reps and managers, and superusers.

    The queryset form of `Access.owns_leads`, for choice lists.
    """
    return (
        users.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__name__in=[Role.SALES_REP, Role.MANAGER]))
        .distinct()
    )


def check_may_work(user, lead) -> None:
    """For the services: refuse (PermissionDenied, with the reason) a user who may not work this lead.

    `user` None is the system (a sequence, a webhook, an import, a migration): it is not asked.
    """
    if user is not None and not access_for(user).can_work(lead):
        raise PermissionDenied(_DENIED["work"])


def check_may_move(user, lead, to_status: str) -> None:
    """For the stage service: refuse a user who may not move this lead to `to_status`."""
    if user is not None and not access_for(user).can_move(lead, to_status):
        raise PermissionDenied(_DENIED["move"])


def check_may_manage_enrollments(user, lead) -> None:
    """Enroll a lead, pause, resume or end its enrollments: its owner, marketers and managers."""
    if user is not None and not access_for(user).can_manage_enrollments(lead):
        raise PermissionDenied(_DENIED["enroll"])


def check_may_build_sequences(user) -> None:
    """Sequences and their steps: marketers and managers (and the system: seeding, migrations)."""
    if user is not None and not access_for(user).builds_sequences:
        raise PermissionDenied(_DENIED["sequences"])


def check_may_manage_campaigns(user) -> None:
    """Campaigns and their spend: marketers and managers (and the system); reps read them.

    Spend is the numerator of cost per lead, so who may change it is who answers for the marketing budget.
    """
    if user is not None and not access_for(user).manages_campaigns:
        raise PermissionDenied(_DENIED["campaigns"])


def check_may_record_conversions(user, lead) -> None:
    """A conversion recorded by hand (or over the API) on a lead: its owner, marketers and managers."""
    if user is not None and not access_for(user).can_record_conversions(lead):
        raise PermissionDenied(_DENIED["conversions"])


def check_may_tag(user, lead) -> None:
    """Adding or removing a lead's tags: its owner, marketers and managers (and the system: an import, a rule)."""
    if user is not None and not access_for(user).can_tag(lead):
        raise PermissionDenied(_DENIED["tag"])


def check_may_make_tags(user) -> None:
    """Making a tag before any lead has it (for a trigger or an audience): marketers and managers (and the system)."""
    if user is not None and not access_for(user).tags_every_lead:
        raise PermissionDenied("Only a marketer or a manager can make a tag ahead of its use; tag a lead to make one.")


def check_may_merge_leads(user) -> None:
    """Merging two leads into one, and undoing a merge: managers (and the system: a dedupe job) only.

    A merge moves a person's whole history between two leads that may belong
    to two reps, so it is the managers' call, like assigning leads.
    """
    if user is not None and not access_for(user).is_manager:
        raise PermissionDenied("Only a manager can merge two leads or undo a merge.")


def check_may_set_scoring(user) -> None:
    """Scoring rules and thresholds: marketers and managers (and the system), who build the sequences too. A
    threshold moves leads to MQL, so who sets it is who answers for what marketing hands to sales."""
    if user is not None and not access_for(user).builds_sequences:
        raise PermissionDenied("Only a marketer or a manager can change the scoring rules.")


def check_may_run_forms(user) -> None:
    """Capture forms and their quarantine: marketers and managers, who build the sequences too (and the system)."""
    if user is not None and not access_for(user).builds_sequences:
        raise PermissionDenied(_DENIED["forms"])


def check_may_revoke_api_token(user, token_owner_id) -> None:
    """An API token is revoked by its owner or by a manager (who may stop any token at once)."""
    if user is not None and user.pk != token_owner_id and not access_for(user).is_manager:
        raise PermissionDenied("Only the token's owner or a manager can revoke it.")


def check_may_change_companies(user) -> None:
    """Creating and changing companies: sales reps and managers (and the system), as their roles' admin rights say."""
    if user is not None and not access_for(user).changes_companies:
        raise PermissionDenied("Only a sales rep or a manager can create or change companies.")


def check_may_change_task(user, task) -> None:
    """A task is changed, snoozed or completed by the person it is for, or a manager (and the system)."""
    if user is not None and not access_for(user).can_change_task(task):
        raise PermissionDenied("Only the person the task is for (or a manager) can change it.")


def check_may_give_task(user, *, assignee, lead=None) -> None:
    """Scheduling a task: on a lead, only who may work it; for someone else, only a manager (and the system)."""
    if user is None:
        return
    if lead is not None:
        check_may_work(user, lead)
    if assignee is not None and assignee.pk != user.pk and not access_for(user).is_manager:
        raise PermissionDenied("Only a manager can give a task to someone else.")


def check_may_manage_leads(user) -> None:
    """Assigning and archiving leads: managers (and the system) only."""
    if user is not None and not access_for(user).is_manager:
        raise PermissionDenied("Only a manager can assign or archive leads.")


def check_may_manage_webhooks(user) -> None:
    """Outbound webhooks (endpoints, their secrets, their delivery log, resends): managers (and the system) only.

    An endpoint sends the CRM's events to another system and its secret lets
    that system trust them, so subscribing one is the managers' call, like exports.
    """
    if user is not None and not may_manage_webhooks(user):
        raise PermissionDenied("Only a manager can see or change outbound webhooks.")


def may_manage_webhooks(user) -> bool:
    """The question behind check_may_manage_webhooks, for pages that hide what a user may not see."""
    return access_for(user).is_manager


# The team's reports: managers see them all; marketers the marketing ones (the funnel, traffic, economics,
# cohorts, nurturing); reps their own numbers only (My numbers).
MARKETING_REPORTS = frozenset({"funnel", "economics", "cohorts", "nurturing"})


def may_view_reports(user, report: str) -> bool:
    access = access_for(user)
    return access.is_manager or (access.is_marketer and report in MARKETING_REPORTS)


def check_may_view_reports(user, report: str) -> None:
    if not may_view_reports(user, report):
        raise PermissionDenied(
            "The team's reports are for managers (marketers see the marketing ones). Your own figures are on My numbers."
        )


def check_may_import_leads(user) -> None:
    """Importing leads from a file: managers and marketers (and the system), who bring lists in from events and ads.

    An import makes and fills in many leads at once, so reps, who work the leads they are given, do not.
    """
    if user is not None and not may_import_leads(user):
        raise PermissionDenied("Only a manager or a marketer can import leads.")


def may_import_leads(user) -> bool:
    """The question behind check_may_import_leads, for pages that hide what a user may not do."""
    access = access_for(user)
    return access.is_manager or access.is_marketer
