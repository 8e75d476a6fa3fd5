from django import forms


class DigestForm(forms.Form):
    email_digest = forms.BooleanField(required=False, label="Email me a daily digest of my unread notifications")
