"""The reports' range and slice, from the query string: parsed here, with an error that says what to fix."""

from datetime import timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from core.roles import Role
from leads.models import Campaign, Persona, Source

from .ranges import MAX_DAYS, DateRange, Slice

DEFAULT_DAYS = 30


class DateInput(forms.DateInput):
    input_type = "date"


class ReportForm(forms.Form):
    start = forms.DateField(required=False, widget=DateInput, label="From")
    end = forms.DateField(required=False, widget=DateInput, label="To")
    source = forms.ModelChoiceField(Source.objects.order_by("name"), required=False, empty_label="Any source")
    medium = forms.CharField(required=False, max_length=50)
    campaign = forms.ModelChoiceField(Campaign.objects.order_by("name"), required=False, empty_label="Any campaign")
    persona = forms.ModelChoiceField(Persona.objects.order_by("name"), required=False, empty_label="Any persona")
    owner = forms.ModelChoiceField(
        get_user_model().objects.filter(groups__name__in=[Role.SALES_REP, Role.MANAGER], is_active=True)
        .distinct().order_by("first_name", "last_name", "username"),
        required=False, empty_label="Any owner",
    )
    landing_page = forms.CharField(required=False, max_length=500, label="First landing page",
                                   help_text="A path, e.g. /pricing")

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["owner"].label_from_instance = lambda user: user.get_full_name() or user.get_username()
        for field in self.fields.values():
            css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs["class"] = f"{css} form-control-sm" if css == "form-control" else f"{css} form-select-sm"

    def clean(self):
        cleaned = super().clean()
        today = timezone.localdate()
        end = cleaned.get("end") or today
        start = cleaned.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if "start" in self.errors or "end" in self.errors:
            return cleaned
        if end < start:
            self.add_error("end", "The range ends before it starts: put the earlier day in From.")
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error("start", f"A range covers at most {MAX_DAYS} days: choose a later From.")
        else:
            cleaned["range"] = DateRange(start, end)
        return cleaned

    def report_range(self) -> DateRange:
        return self.cleaned_data["range"]

    def report_slice(self) -> Slice:
        data = self.cleaned_data

        def pk(name):
            return data[name].pk if data.get(name) else None

        return Slice(source=pk("source"), medium=data.get("medium") or None, campaign=pk("campaign"),
                     persona=pk("persona"), owner=pk("owner"), landing_page=data.get("landing_page") or None)


def default_form() -> ReportForm:
    """The form as it is with nothing chosen: the last 30 days, everything."""
    form = ReportForm({})
    form.is_valid()
    return form
