"""Forms that feed the lead services. They parse input; the services decide."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.people import person_name

from . import pipeline
from .models import Lead
from .money import WRITE_IN_DIGITS, amount_in_digits
from .pipeline import LeadStatus
from .selectors import lead_duplicate_of, lead_owner_choices
from .services import normalize_email


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Show a service's ValidationError next to the matching fields (the rest on top)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


class OwnerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        name = obj.get_full_name()
        return f"{name} ({obj.get_username()})" if name else obj.get_username()


class LeadForm(forms.ModelForm):
    """Contact and attribution details of a lead. The stage is never edited here."""

    class Meta:
        model = Lead
        fields = [
            "first_name", "last_name", "email", "phone", "title", "linkedin_url", "x_url", "company", "owner",
            "source", "campaign", "utm_medium", "utm_content", "utm_term", "persona",
            "timezone", "consent_given_at", "consent_text", "consent_source",
        ]
        field_classes = {"owner": OwnerChoiceField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "owner" in self.fields:
            self.fields["owner"].queryset = lead_owner_choices()

    def clean_email(self):
        email = normalize_email(self.cleaned_data.get("email", ""))
        if email:
            other = lead_duplicate_of(email=email, exclude_pk=self.instance.pk)
            if other is not None:
                raise ValidationError(
                    "Another lead already has this email address: %(other)s (lead #%(pk)s). "
                    "Open that lead instead of creating a duplicate.",
                    params={"other": other, "pk": other.pk},
                    code="duplicate",
                )
        return email

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("email") and not (cleaned.get("phone") or "").strip() and "email" not in self.errors:
            raise ValidationError("Give an email address or a phone number, so the lead can be contacted.")
        return cleaned


class StageMoveForm(forms.Form):
    to_status = forms.ChoiceField(label="Move to", choices=())
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Required for Lost and Disqualified; recorded in the stage history.",
    )

    def __init__(self, *args, from_status: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if from_status is None:
            targets = [s for s in LeadStatus if s not in pipeline.NEEDS_CONVERSION]
        else:
            targets = [s for s in pipeline.allowed_moves(from_status) if s not in pipeline.NEEDS_CONVERSION]
        self.fields["to_status"].choices = [(LeadStatus(s).value, LeadStatus(s).label) for s in targets]


class AssignOwnerForm(forms.Form):
    owner = OwnerChoiceField(queryset=None, required=False, empty_label="Nobody (unassigned pool)", label="Assign to")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = lead_owner_choices()


class TagForm(forms.Form):
    # Not required here: the tag service says what is wrong with an empty or too long tag.
    tag = forms.CharField(required=False, label="Tag", help_text="An existing tag in any case, or a new one (up to 50 characters).")


class AmountField(forms.DecimalField):
    """An amount of money as a person types it: digits, as the deal services take it ("1e3" and "NaN" are
    refused here by the same rule, leads.money, with the same words)."""

    default_error_messages = {"invalid": WRITE_IN_DIGITS}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return amount_in_digits(value)
        except ValueError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


class ConvertForm(forms.Form):
    deal_value = AmountField(min_value=0, max_digits=12, decimal_places=2, label="Deal value")
    currency = forms.CharField(max_length=3, min_length=3, help_text="ISO 4217 code, e.g. EUR")
    product = forms.CharField(max_length=200, required=False)
    expected_close_on = forms.DateField(required=False, help_text="YYYY-MM-DD")

    def clean_currency(self):
        return self.cleaned_data["currency"].strip().upper()


class DealOpenForm(forms.Form):
    """An open deal (an opportunity) for a lead: its value, what it is for, when it should close, what happens next."""

    value = AmountField(min_value=0, max_digits=12, decimal_places=2, label="Deal value")
    currency = forms.CharField(max_length=3, min_length=3, help_text="ISO 4217 code, e.g. EUR")
    product = forms.CharField(max_length=200, required=False)
    expected_close_on = forms.DateField(required=False, label="Expected close date",
                                        widget=forms.DateInput(attrs={"type": "date"}))
    next_step = forms.CharField(max_length=300, required=False, label="Next step",
                                help_text="What happens next, e.g. send the proposal.")

    def clean_currency(self):
        return self.cleaned_data["currency"].strip().upper()


class MergeLeadsForm(forms.Form):
    """Which of two leads to keep; the other's history moves to it (see leads.services.lead_merge)."""

    keep = forms.TypedChoiceField(
        label="Keep", coerce=int, widget=forms.RadioSelect,
        help_text="The other lead's history, deals and sequences move to this one, its blank fields are filled "
                  "from the other, and the other is archived. The merge can be undone (Leads → Lead merges).",
    )

    def __init__(self, *args, leads, **kwargs):
        super().__init__(*args, **kwargs)
        self.leads = {lead.pk: lead for lead in leads}
        self.fields["keep"].choices = [(lead.pk, _merge_choice_label(lead)) for lead in leads]

    def chosen(self):
        """(the lead to keep, the lead to merge into it)."""
        keep = self.cleaned_data["keep"]
        (other,) = (pk for pk in self.leads if pk != keep)
        return self.leads[keep], self.leads[other]


def _merge_choice_label(lead: Lead) -> str:
    owner = person_name(lead.owner) if lead.owner_id else "unassigned"
    contact = lead.email or lead.phone
    created = timezone.localtime(lead.created_at)
    return f"#{lead.pk} {lead.full_name or contact} <{contact}>: {pipeline.label(lead.status)}, {owner}, created {created:%Y-%m-%d}"
