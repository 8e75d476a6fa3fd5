"""The API tokens page's form: it parses input; `api_token_create` decides."""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.utils import timezone

from .models import Scope

LIFETIMES = (30, 90, 365)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, error_messages={"required": "Name the token after what uses it."},
                           help_text="What uses it, e.g. “Website sync”.")
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple,
                                       error_messages={"required": "Choose at least one scope."})
    days = forms.TypedChoiceField(label="Expires after", coerce=int, initial=90)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        days = sorted({d for d in LIFETIMES if d <= settings.CRM_API_TOKEN_MAX_DAYS} | {settings.CRM_API_TOKEN_MAX_DAYS})
        self.fields["days"].choices = [(d, f"{d} days") for d in days]

    def expires_at(self):
        return timezone.now() + timedelta(days=self.cleaned_data["days"])
