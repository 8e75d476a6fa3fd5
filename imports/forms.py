"""The import pages' forms: they parse input; the rules are the services'."""

from django import forms

from leads.importing import IMPORTABLE_FIELDS

from . import reading
from .models import LeadImport

ENCODING_CHOICES = [("", "Detect"), ("utf-8", "UTF-8"), ("utf-16", "UTF-16"), ("cp1252", "Windows-1252"),
                    ("latin-1", "Latin-1 (ISO 8859-1)")]
SEPARATOR_CHOICES = [("", "Detect"), (",", "Comma"), (";", "Semicolon"), ("\t", "Tab")]


class UploadForm(forms.Form):
    file = forms.FileField(help_text="A .csv or .xlsx file; its first row names the columns.")
    encoding = forms.ChoiceField(choices=ENCODING_CHOICES, required=False)
    separator = forms.ChoiceField(choices=SEPARATOR_CHOICES, required=False)


class SetupForm(forms.Form):
    """A select per column (named col_0, col_1...: headers can be anything), and how to read and dedupe."""

    encoding = forms.ChoiceField(choices=ENCODING_CHOICES[1:], required=False)
    separator = forms.ChoiceField(choices=SEPARATOR_CHOICES[1:], required=False)
    date_format = forms.ChoiceField(choices=[("", "—"), *reading.DATE_FORMATS.items()], required=False)
    dedupe_key = forms.ChoiceField(choices=LeadImport.DedupeKey.choices, label="Find duplicates by")
    on_duplicate = forms.ChoiceField(choices=LeadImport.OnDuplicate.choices, label="When a lead is already in the CRM")

    def __init__(self, *args, columns, job: LeadImport, mapping: dict, date_formats: list, **kwargs):
        initial = {"encoding": job.encoding, "separator": job.separator, "dedupe_key": job.dedupe_key,
                   "on_duplicate": job.on_duplicate,
                   "date_format": job.date_format or (date_formats[0] if len(date_formats) == 1 else "")}
        super().__init__(*args, initial=initial, **kwargs)
        self.columns = columns
        if job.kind != "csv":
            del self.fields["encoding"], self.fields["separator"]
        choices = [("", "Ignore"), *IMPORTABLE_FIELDS.items()]
        for index, column in enumerate(columns):
            self.fields[f"col_{index}"] = forms.ChoiceField(
                choices=choices, required=False, label=column or f"(column {index + 1})", initial=mapping.get(column, ""),
            )

    def column_fields(self):
        return [self[f"col_{index}"] for index in range(len(self.columns))]

    def mapping(self) -> dict:
        return {column: self.cleaned_data.get(f"col_{index}", "") for index, column in enumerate(self.columns)}
