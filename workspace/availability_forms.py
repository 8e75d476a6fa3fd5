"""The rep's availability page: parses what the rep types; booking.services.calendar_save holds the rules."""

import re
from datetime import date, time

from django import forms

from booking.availability import time_zones
from booking.models import WorkingHours

SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")


def _spans(text: str, label: str) -> list[tuple[time, time]]:
    spans = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = SPAN.match(part)
        if not match:
            raise forms.ValidationError(f"{label}: write hours as 09:00-17:00 (several: 09:00-12:00, 13:00-17:00).")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise forms.ValidationError(f"{label}: {part} is not a time of day.")
        spans.append((time(h1, m1), time(h2, m2)))
    return spans


def spans_text(blocks) -> str:
    return ", ".join(f"{b.starts:%H:%M}-{b.ends:%H:%M}" for b in blocks)


class AvailabilityForm(forms.Form):
    time_zone = forms.ChoiceField(label="My time zone")
    meeting_minutes = forms.CharField(label="Meeting lengths I take (minutes)", initial="30",
                                      help_text="Several: 30, 45.")
    buffer_before_minutes = forms.IntegerField(label="Free before each meeting (minutes)", min_value=0, max_value=240)
    buffer_after_minutes = forms.IntegerField(label="Free after each meeting (minutes)", min_value=0, max_value=240)
    notice_minutes = forms.IntegerField(label="Notice needed (minutes)", min_value=0, max_value=60 * 24 * 14)
    horizon_days = forms.IntegerField(label="Bookable up to (days ahead)", min_value=1, max_value=365)
    daily_max = forms.IntegerField(label="At most meetings a day", min_value=1, max_value=50)
    meeting_url = forms.URLField(label="Meeting link (video call)", required=False, assume_scheme="https")
    is_available = forms.BooleanField(label="Take bookings", required=False)
    days_off = forms.CharField(label="Days off", required=False, widget=forms.Textarea(attrs={"rows": 3}),
                               help_text="One date a line, e.g. 2026-12-24.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(name, name) for name in time_zones()]
        for day in WorkingHours.Weekday:
            self.fields[f"hours_{day.value}"] = forms.CharField(
                label=day.label, required=False, help_text="Empty: not bookable that day." if day.value == 0 else "")

    @classmethod
    def initial_for(cls, calendar) -> dict:
        by_day = {day.value: [] for day in WorkingHours.Weekday}
        for block in calendar.hours.all():
            by_day[block.weekday].append(block)
        return {
            **{name: getattr(calendar, name) for name in ("time_zone", "buffer_before_minutes", "buffer_after_minutes",
                                                          "notice_minutes", "horizon_days", "daily_max", "meeting_url",
                                                          "is_available")},
            "meeting_minutes": ", ".join(str(m) for m in calendar.meeting_minutes),
            "days_off": "\n".join(f"{d.date:%Y-%m-%d}" for d in calendar.days_off.all()),
            **{f"hours_{day}": spans_text(blocks) for day, blocks in by_day.items()},
        }

    def clean_meeting_minutes(self):
        try:
            return [int(part) for part in self.cleaned_data["meeting_minutes"].replace(" ", "").split(",") if part]
        except ValueError:
            raise forms.ValidationError("Give whole minutes, separated by commas: 30, 45.") from None

    def clean_days_off(self):
        days = []
        for line in filter(None, (line.strip() for line in self.cleaned_data["days_off"].splitlines())):
            try:
                days.append(date.fromisoformat(line))
            except ValueError:
                raise forms.ValidationError(f"{line}: write dates as 2026-12-24, one a line.") from None
        return days

    def clean(self):
        data = super().clean()
        for day in WorkingHours.Weekday:
            name = f"hours_{day.value}"
            if name in data:
                try:
                    data[name] = _spans(data[name], day.label)
                except forms.ValidationError as exc:
                    self.add_error(name, exc)
        return data

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        hours = {day.value: data[f"hours_{day.value}"] for day in WorkingHours.Weekday if data.get(f"hours_{day.value}")}
        fields = {name: data[name] for name in ("time_zone", "meeting_minutes", "buffer_before_minutes",
                                                  "buffer_after_minutes", "notice_minutes", "horizon_days", "daily_max",
                                                  "meeting_url", "is_available")}
        return {"hours": hours, "days_off": data["days_off"], **fields}
