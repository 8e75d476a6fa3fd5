from django import forms

from .models import ScoringRule, ScoringSettings
from .services import rule_check


class ScoringSettingsForm(forms.ModelForm):
    class Meta:
        model = ScoringSettings
        fields = ("mql_threshold", "sql_threshold", "half_life_days", "creates_task")


class RuleForm(forms.ModelForm):
    class Meta:
        model = ScoringRule
        fields = ("kind", "persona", "source", "resource", "value", "points", "max_times", "is_active")
        widgets = {"value": forms.TextInput(attrs={"size": 18}), "points": forms.NumberInput(attrs={"size": 5}),
                   "max_times": forms.NumberInput(attrs={"size": 4})}

    def _post_clean(self):
        super()._post_clean()
        if self.has_changed() and not self.errors:
            try:
                rule_check(self.instance)  # the service's rules, shown beside the fields
            except forms.ValidationError as exc:
                self._update_errors(exc)


RuleFormSet = forms.modelformset_factory(ScoringRule, form=RuleForm, extra=3, can_delete=True)
