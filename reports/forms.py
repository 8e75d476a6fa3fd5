"""The reports' range and slice, from the query string: parsed here, with an error that says what to fix."""

from datetime import timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from core.people import person_name
from core.roles import Role
from leads.models import Campaign, Persona, Source

from .ranges import MAX_DAYS, DateRange, Slice

DEFAULT_DAYS = 30


class DateInput(forms.DateInput):
    input_type = "date"


def _owners():
    users = (get_user_model().objects.filter(groups__name__in=[Role.SALES_REP, Role.MANAGER], is_active=True)
             .distinct().order_by("first_name", "last_name", "username"))
    return [(user.pk, person_name(user)) for user in users]


def _named(model):
    return lambda: list(model.objects.order_by("name").values_list("pk", "name"))


# The slice's choices: each read once per form, for the options shown and to check what was chosen (the same
# queries whatever is chosen, so a page's query count does not depend on its filters).
CHOICES = {"source": (_named(Source), "Any source"), "campaign": (_named(Campaign), "Any campaign"),
           "persona": (_named(Persona), "Any persona"), "owner": (_owners, "Any owner")}


def _choice(label: str | None = None) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(coerce=int, empty_value=None, required=False, label=label)


class ReportForm(forms.Form):
    start = forms.DateField(required=False, widget=DateInput, label="From")
    end = forms.DateField(required=False, widget=DateInput, label="To")
    source = _choice()
    medium = forms.CharField(required=False, max_length=50)
    campaign = _choice()
    persona = _choice()
    owner = _choice()
    landing_page = forms.CharField(required=False, max_length=500, label="First landing page",
                                   help_text="A path, e.g. /pricing")

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        for name, (choices, empty) in CHOICES.items():
            self.fields[name].choices = [("", empty), *choices()]
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
        return Slice(source=data.get("source"), medium=data.get("medium") or None, campaign=data.get("campaign"),
                     persona=data.get("persona"), owner=data.get("owner"), landing_page=data.get("landing_page") or None)

