"""The reps' forms. They parse input and show errors next to fields; the leads and nurturing services decide."""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.utils import timezone

from leads.forms import ConvertForm, DealOpenForm, OwnerChoiceField, StageMoveForm
from leads.models import Activity, Campaign, Lead, Objection, Persona, Source
from leads.pipeline import LeadStatus
from leads.selectors import lead_owner_choices
from nurturing.models import Sequence

__all__ = ["ConvertForm", "DealOpenForm", "StageMoveForm"]  # re-used as they are from the admin's forms


class LocalDateTimeInput(forms.DateTimeInput):
    """The browser's date-and-time picker; values are read in the account's timezone."""

    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


def next_morning():
    tomorrow = timezone.localtime() + timedelta(days=1)
    return tomorrow.replace(hour=9, minute=0, second=0, microsecond=0)


class MinutesField(forms.IntegerField):
    def __init__(self, **kwargs):
        super().__init__(
            min_value=0,
            max_value=24 * 60,
            required=False,
            error_messages={"min_value": "A duration cannot be negative.", "max_value": "At most 1,440 minutes (a day)."},
            **kwargs,
        )


class CallForm(forms.Form):
    direction = forms.ChoiceField(
        choices=Activity.Direction.choices, initial=Activity.Direction.OUTBOUND, widget=forms.RadioSelect
    )
    outcome = forms.ChoiceField(
        choices=[("", "Choose…"), *Activity.CallOutcome.choices],
        error_messages={"required": "Choose the call's outcome."},
    )
    duration_minutes = MinutesField(label="Duration (minutes)")
    body = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 3}))
    follow_up_title = forms.CharField(label="Next step", required=False, max_length=200,
                                      help_text="Creates a task for you, e.g. “Send the pricing sheet”.")
    follow_up_due_at = forms.DateTimeField(label="Next step due", required=False, widget=LocalDateTimeInput())

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        minutes = data.get("duration_minutes")
        return {
            "direction": data["direction"],
            "outcome": data["outcome"],
            "duration_seconds": None if minutes is None else minutes * 60,
            "body": data.get("body", ""),
            "follow_up_title": data.get("follow_up_title", ""),
            "follow_up_due_at": data.get("follow_up_due_at"),
        }


class ObjectionForm(forms.Form):
    category = forms.ChoiceField(choices=[("", "Choose…"), *Objection.Category.choices],
                                 error_messages={"required": "Choose what the objection is about."})
    lead_words = forms.CharField(label="The lead's words", widget=forms.Textarea(attrs={"rows": 2}),
                                 error_messages={"required": "Write down what the lead said."})
    response = forms.CharField(label="My answer", required=False, widget=forms.Textarea(attrs={"rows": 2}))
    is_resolved = forms.BooleanField(label="Resolved", required=False)


class NoteForm(forms.Form):
    body = forms.CharField(label="Note", widget=forms.Textarea(attrs={"rows": 3}),
                           error_messages={"required": "Write the note before saving it."})


class MeetingForm(forms.Form):
    occurred_at = forms.DateTimeField(label="When", widget=LocalDateTimeInput(), initial=timezone.localtime)
    duration_minutes = MinutesField(label="Duration (minutes)")
    body = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 3}))


class SocialTouchForm(forms.Form):
    """A touch on a social network: a message, a comment, a connection."""

    channel = forms.ChoiceField(label="Network", choices=Activity.Channel.choices, initial=Activity.Channel.LINKEDIN)
    social_action = forms.ChoiceField(label="What happened", choices=Activity.SocialAction.choices)
    occurred_at = forms.DateTimeField(label="When", widget=LocalDateTimeInput(), initial=timezone.localtime)
    body = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 3}))


class ReplyForm(forms.Form):
    """For mail setups without an inbound webhook: the rep records that the lead answered by email."""

    occurred_at = forms.DateTimeField(label="When", widget=LocalDateTimeInput(), initial=timezone.localtime)
    note = forms.CharField(label="What they said", required=False, widget=forms.Textarea(attrs={"rows": 3}))


class TaskForm(forms.Form):
    title = forms.CharField(max_length=200, error_messages={"required": "Say what has to be done."})
    due_at = forms.DateTimeField(label="Due", widget=LocalDateTimeInput(), initial=next_morning)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class SnoozeForm(forms.Form):
    until = forms.DateTimeField(widget=LocalDateTimeInput(), initial=next_morning)


class EnrollForm(forms.Form):
    sequence = forms.ModelChoiceField(queryset=Sequence.objects.none(), empty_label="Choose a sequence…",
                                      error_messages={"required": "Choose a sequence."})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sequence"].queryset = Sequence.objects.filter(status=Sequence.Status.ACTIVE).order_by("name")


class TagForm(forms.Form):
    # Not required here: the tag service says what is wrong with an empty or too long tag.
    tag = forms.CharField(required=False, label="Add a tag", max_length=200)


class LeadFilterForm(forms.Form):
    """The My leads filters; every field is optional and a bad value is reported, not ignored."""

    q = forms.CharField(required=False, label="Search", max_length=200,
                        widget=forms.TextInput(attrs={"data-search": "", "placeholder": "Name, email, phone, company", "type": "search"}))
    scope = forms.ChoiceField(required=False, choices=())
    owner = OwnerChoiceField(required=False, queryset=None, empty_label="Any owner")
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *LeadStatus.choices])
    source = forms.ModelChoiceField(required=False, queryset=Source.objects.order_by("name"), empty_label="Any source")
    campaign = forms.ModelChoiceField(required=False, queryset=Campaign.objects.order_by("name"), empty_label="Any campaign")
    persona = forms.ModelChoiceField(required=False, queryset=Persona.objects.order_by("name"), empty_label="Any persona")
    score_min = forms.IntegerField(required=False, label="Score at least")
    tag = forms.CharField(required=False, label="Tag", max_length=50, help_text="In any case.")
    touched = forms.ChoiceField(
        required=False,
        label="Last touch",
        choices=[("", "Any time"), ("week", "In the last 7 days"), ("cold", "Gone cold"), ("never", "Never touched")],
    )
    next_task = forms.ChoiceField(
        required=False,
        label="Next task",
        choices=[("", "Any"), ("overdue", "Overdue"), ("today", "Due by today"), ("none", "No open task")],
    )
    sort = forms.ChoiceField(
        required=False,
        choices=[("newest", "Newest"), ("oldest", "Oldest"), ("score", "Highest score"), ("last_touch", "Recently touched"),
                 ("least_touched", "Least recently touched"), ("name", "Name"),
                 # The sortable columns' other directions (see workspace.sorting).
                 ("name_desc", "Name, Z to A"), ("stage", "Stage"), ("stage_desc", "Stage, last first"),
                 ("owner", "Owner"), ("owner_desc", "Owner, last first"), ("score_asc", "Lowest score")],
    )

    def __init__(self, *args, access, **kwargs):
        super().__init__(*args, **kwargs)
        scopes = []
        if access.owns_leads:
            scopes.append(("mine", "My leads"))
        scopes.append(("pool", "Unassigned pool"))
        if access.sees_all:
            scopes.append(("all", "All leads"))
        self.fields["scope"].choices = scopes
        if access.sees_all:
            self.fields["owner"].queryset = lead_owner_choices()
        else:
            del self.fields["owner"]
        self.fields["touched"].choices = [
            (value, f"No touch for {settings.CRM_COLD_AFTER_DAYS} days" if value == "cold" else label)
            for value, label in self.fields["touched"].choices
        ]
        # Drawn by workspace/partials/filter_field.html (crispy's field templates cost more than the whole list):
        # Bootstrap's classes go on the widgets here.
        for field in self.fields.values():
            css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs["class"] = f"{field.widget.attrs.get('class', '')} {css}".strip()

    def clean_score_min(self):
        value = self.cleaned_data["score_min"]
        if value is not None:
            Lead._meta.get_field("score").run_validators(value)  # within what the database can compare
        return value
