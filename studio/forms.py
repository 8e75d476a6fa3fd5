"""The marketers' forms: they parse what was typed; the rules are the services' (their errors show by the field)."""

from datetime import timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from leads.forms import OwnerChoiceField
from nurturing.models import WEEKDAYS, Sequence, Step

from .templatetags.studio import WEEKDAY_NAMES

# The service names a step's wait "delay"; the form asks it as days and hours.
SERVICE_FIELD = {"delay": "delay_days"}


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Show a service's ValidationError next to the matching fields (the rest on top of the form)."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, errors in exc.message_dict.items():
        field = SERVICE_FIELD.get(field, field)
        form.add_error(field if field in form.fields else None, errors)


class SequenceForm(forms.ModelForm):
    sender = OwnerChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).exclude(email="").order_by("first_name", "last_name"),
        required=False, empty_label="Each lead's rep (the owner)",
        help_text=Sequence._meta.get_field("sender").help_text,
    )

    class Meta:
        model = Sequence
        fields = ("name", "goal", "goal_stage", "target_persona", "sender", "daily_cap_per_sender",
                  "pause_company_on_reply", "in_other_sequence", "requires_consent")
        widgets = {"goal": forms.Textarea(attrs={"rows": 2})}


class StepForm(forms.ModelForm):
    """A step as the marketer sets it: the wait in days and hours, send days as toggles, times as time inputs."""

    delay_days = forms.IntegerField(label="Days", min_value=0, max_value=365, initial=2)
    delay_hours = forms.IntegerField(label="Hours", min_value=0, max_value=23, initial=0)
    send_days = forms.MultipleChoiceField(
        label="Send on", choices=list(zip(WEEKDAYS, WEEKDAY_NAMES, strict=True)),
        widget=forms.CheckboxSelectMultiple(attrs={"class": "btn-check"}),
        error_messages={"required": "Choose at least one day to send on."},
    )

    class Meta:
        model = Step
        fields = ("kind", "delay_days", "delay_hours", "send_days", "window_start", "window_end", "condition",
                  "condition_resource", "subject_template", "text_template", "html_template", "stage_action",
                  "click_link_contains", "click_stage_action", "click_creates_call_task")
        labels = {
            "window_start": "From", "window_end": "Until", "condition": "Send it",
            "condition_resource": "The resource", "subject_template": "Subject",
            "text_template": "Plain text", "html_template": "HTML (optional)",
            "stage_action": "When sent, move the lead to",
            "click_link_contains": "When a person clicks a link containing",
            "click_stage_action": "On that click, move the lead to",
            "click_creates_call_task": "On that click, create a call task for the lead's rep",
        }
        help_texts = {"window_start": "", "window_end": "In the lead's time zone.", "condition": "", "text_template": "",
                      "click_link_contains": "e.g. /pricing", "click_stage_action": "", "click_creates_call_task": "",
                      "stage_action": ""}
        widgets = {
            "kind": forms.HiddenInput,
            "window_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "window_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "subject_template": forms.TextInput(attrs={"autocomplete": "off"}),
            "text_template": forms.Textarea(attrs={"rows": 8}),
            "html_template": forms.Textarea(attrs={"rows": 4}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        step = self.instance
        if not self.is_bound:
            seconds = int(step.delay.total_seconds()) if step.delay else 0
            self.initial["delay_days"], rest = divmod(seconds, 86400)
            self.initial["delay_hours"] = rest // 3600
            self.initial["send_days"] = list(step.send_days or "")
        self.fields["condition"].choices = [
            (Step.Condition.ALWAYS, "always"),
            (Step.Condition.NO_REPLY, "only if no earlier email of this sequence got a reply"),
            (Step.Condition.HUMAN_CLICK, "only if a person clicked a link in an earlier email of this sequence"),
            (Step.Condition.DOWNLOADED, "only if the lead downloaded the resource below"),
        ]
        self.fields["stage_action"].choices = [("", "keep the stage"), *self.fields["stage_action"].choices[1:]]
        self.fields["click_stage_action"].choices = [("", "keep the stage"), *self.fields["click_stage_action"].choices[1:]]

    def clean_send_days(self):
        return "".join(sorted(set(self.cleaned_data["send_days"])))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("delay_days") is not None and cleaned.get("delay_hours") is not None:
            # Not a field of the model form: set here, before the instance is built and checked.
            self.instance.delay = timedelta(days=cleaned["delay_days"], hours=cleaned["delay_hours"])
        for name in ("subject_template", "text_template", "html_template", "click_link_contains"):
            if cleaned.get(name) is None:
                cleaned[name] = ""
        return cleaned
