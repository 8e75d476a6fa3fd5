"""The import pages' forms: they parse input; the rules are the services'."""

from django import forms

from leads.history import OUTCOMES

from . import reading
from .models import LeadImport
from .services import fields_of

ENCODING_CHOICES = [("", "Detect"), ("utf-8", "UTF-8"), ("utf-16", "UTF-16"), ("cp1252", "Windows-1252"),
                    ("latin-1", "Latin-1 (ISO 8859-1)")]
SEPARATOR_CHOICES = [("", "Detect"), (",", "Comma"), (";", "Semicolon"), ("\t", "Tab")]


class UploadForm(forms.Form):
    target = forms.ChoiceField(choices=LeadImport.Target.choices, label="The file's rows are", required=False,
                               initial=LeadImport.Target.LEADS)
    file = forms.FileField(help_text="A .csv or .xlsx file; its first row names the columns.")
    encoding = forms.ChoiceField(choices=ENCODING_CHOICES, required=False)
    separator = forms.ChoiceField(choices=SEPARATOR_CHOICES, required=False)


class SetupForm(forms.Form):
    """A select per column (named col_0, col_1...: headers can be anything), and how to read and dedupe; for a
    deal history, a select per stage of the file (stage_0, stage_1...), who gets unknown owners' deals, the
    currency."""

    encoding = forms.ChoiceField(choices=ENCODING_CHOICES[1:], required=False)
    separator = forms.ChoiceField(choices=SEPARATOR_CHOICES[1:], required=False)
    date_format = forms.ChoiceField(choices=[("", "—"), *reading.DATE_FORMATS.items()], required=False)
    dedupe_key = forms.ChoiceField(choices=LeadImport.DedupeKey.choices, label="Find duplicates by")
    on_duplicate = forms.ChoiceField(choices=LeadImport.OnDuplicate.choices, label="When a lead is already in the CRM")

    unknown_owner = forms.ChoiceField(choices=LeadImport.UnknownOwner.choices, label="An owner who is no user")
    currency = forms.CharField(max_length=3, required=False, label="Currency of the values",
                               help_text="Empty: the CRM's currency.")

    def __init__(self, *args, columns, job: LeadImport, mapping: dict, date_formats: list, stages=(),
                 stage_mapping=None, **kwargs):
        initial = {"encoding": job.encoding, "separator": job.separator, "dedupe_key": job.dedupe_key,
                   "on_duplicate": job.on_duplicate, "unknown_owner": job.unknown_owner, "currency": job.currency,
                   "date_format": job.date_format or (date_formats[0] if len(date_formats) == 1 else "")}
        super().__init__(*args, initial=initial, **kwargs)
        self.columns = columns
        self.stages = [name for name, _ in stages]
        self.stage_counts = dict(stages)
        if job.kind != "csv":
            del self.fields["encoding"], self.fields["separator"]
        if job.target != LeadImport.Target.LEADS:
            del self.fields["dedupe_key"]
        if job.target == LeadImport.Target.DEALS:
            del self.fields["on_duplicate"]  # an opportunity imported before is skipped
            for index, name in enumerate(self.stages):
                self.fields[f"stage_{index}"] = forms.ChoiceField(
                    choices=[("", "Not mapped: refuse its rows"), *OUTCOMES.items()], required=False,
                    label=name or "(blank)", initial=(stage_mapping or {}).get(name, ""),
                )
        else:
            del self.fields["unknown_owner"], self.fields["currency"]
        choices = [("", "Ignore"), *fields_of(job).items()]
        for index, column in enumerate(columns):
            self.fields[f"col_{index}"] = forms.ChoiceField(
                choices=choices, required=False, label=column or f"(column {index + 1})", initial=mapping.get(column, ""),
            )

    def column_fields(self):
        return [self[f"col_{index}"] for index in range(len(self.columns))]

    def mapping(self) -> dict:
        return {column: self.cleaned_data.get(f"col_{index}", "") for index, column in enumerate(self.columns)}

    def stage_fields(self):
        return [(self[f"stage_{index}"], self.stage_counts[name]) for index, name in enumerate(self.stages)]

    def stage_mapping(self) -> dict:
        return {name: self.cleaned_data.get(f"stage_{index}", "") for index, name in enumerate(self.stages)}
