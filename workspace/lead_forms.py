"""The forms of a rep's own lead pages: a new lead, its edit, and the small in-place edits on the lead page.

They parse input and show errors by field; `workspace.services` and the leads services decide.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from core.emails import normalize_email
from leads.models import Campaign, Lead, Persona, Source
from leads.selectors import lead_duplicate_of

# What a rep may set on a lead: never its stage, score or history. The company is typed by name.
LEAD_FIELDS = ("first_name", "last_name", "email", "phone", "title", "linkedin_url", "x_url", "source", "campaign",
               "persona", "timezone", "consent_given_at", "consent_text", "consent_source")


def duplicate_error(other: Lead) -> ValidationError:
    """The duplicate-email error with a link to the lead that has the address (its name escaped)."""
    return ValidationError(
        format_html('A lead with this email exists: <a href="{}">{} (lead #{})</a>. Open it instead of creating a duplicate.',
                    reverse("workspace:lead_detail", args=[other.pk]), str(other), other.pk),
        code="duplicate",
    )


class RepLeadForm(forms.ModelForm):
    """A lead's contact and attribution details, as a rep types them; the company by its name."""

    company_name = forms.CharField(
        label="Company", required=False, max_length=200,
        help_text="An existing company's name (any case) or a new one, which is then created.",
    )

    class Meta:
        model = Lead
        fields = LEAD_FIELDS
        widgets = {"consent_given_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
                   "consent_text": forms.Textarea(attrs={"rows": 2})}

    field_order = ("first_name", "last_name", "email", "phone", "title", "company_name")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].queryset = Source.objects.order_by("name")
        self.fields["campaign"].queryset = Campaign.objects.order_by("name")
        self.fields["persona"].queryset = Persona.objects.order_by("name")
        if self.instance.pk and self.instance.company_id:
            self.fields["company_name"].initial = self.instance.company.name

    def clean_email(self):
        email = normalize_email(self.cleaned_data.get("email", ""))
        if email:
            other = lead_duplicate_of(email=email, exclude_pk=self.instance.pk)
            if other is not None:
                raise duplicate_error(other)
        return email

    def service_fields(self) -> dict:
        """The changed fields for the service (all of them for a new lead)."""
        names = LEAD_FIELDS if self.instance.pk is None else [n for n in self.changed_data if n in LEAD_FIELDS]
        return {name: self.cleaned_data[name] for name in names}

    def _post_clean(self):
        # The service validates the lead (and says so by field); the form does not run the model's checks twice.
        pass


# --- In-place edits on the lead page ------------------------------------------------------------

# The details a lead's worker changes in place, whatever its stage (they move nothing in the pipeline).
STAGE_SAFE_FIELDS = ("title", "phone", "persona", "timezone")


class _DetailForm(forms.ModelForm):
    def _post_clean(self):
        pass  # the lead service validates (and says so by field)


def detail_form(name: str, lead: Lead, data=None) -> forms.ModelForm:
    form_class = forms.modelform_factory(Lead, form=_DetailForm, fields=[name])
    form = form_class(data, instance=lead)
    if name == "persona":
        form.fields["persona"].queryset = Persona.objects.order_by("name")
    return form


class CompanyNameForm(forms.Form):
    company_name = forms.CharField(label="Company", required=False, max_length=200,
                                   help_text="An existing company's name (any case) or a new one; empty for none.")


class NextTaskForm(forms.Form):
    title = forms.CharField(max_length=200, label="Next task", error_messages={"required": "Say what has to be done."})
    due_at = forms.DateTimeField(label="Due", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
                                 error_messages={"required": "Choose when the task is due."})


# --- Bulk actions on the Leads list -----------------------------------------------------------------

# One action changes at most this many leads (a page of the list is 25; "select all" takes one page).
BULK_MAX = 500

BULK_ACTIONS = {
    "assign": "Assign to…",
    "enroll": "Enroll in a sequence…",
    "stage": "Change stage…",
    "task": "Add a task…",
    "export": "Export as CSV",
}


class BulkSelectionForm(forms.Form):
    action = forms.ChoiceField(choices=BULK_ACTIONS.items(), error_messages={"required": "Choose what to do with the selected leads."})
    lead = forms.TypedMultipleChoiceField(coerce=int, error_messages={"required": "Select at least one lead."})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any id is accepted here; which leads the user may see and change is the view's and the services' call.
        self.fields["lead"].valid_value = lambda value: str(value).isdigit()

    def clean_lead(self):
        ids = list(dict.fromkeys(self.cleaned_data["lead"]))
        if len(ids) > BULK_MAX:
            raise ValidationError(f"{len(ids):,} leads are selected: an action takes at most {BULK_MAX} at a time.")
        return ids


class BulkTaskForm(forms.Form):
    title = forms.CharField(max_length=200, error_messages={"required": "Say what has to be done."})
    due_at = forms.DateTimeField(label="Due", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
                                 error_messages={"required": "Choose when the task is due."})
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    assignee = forms.ChoiceField(label="For", choices=[("owner", "Each lead's owner (me for unassigned leads)"), ("me", "Me")],
                                 initial="owner", widget=forms.RadioSelect)
