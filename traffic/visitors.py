"""Human visitors counted exactly over any range and slice, without reading the page views again.

Distinct visitors do not add up: 100 visitors on Monday and 100 on Tuesday
may be 100 or 200 people. So each day keeps its human visitors as a *set*
(traffic.DailyVisitors: a Roaring bitmap of visitor numbers, one per day and
attribution, plus one for the whole day), and a range's count is the size of
the union of its days' sets: exact, and a month is a few dozen small sets
instead of millions of page views.

The sets are written with the page views, in the same transaction
(`visitors_record`, called by traffic.ingest for every batch): a page view
stored is a visitor counted, with no refresh to wait for. Adding a visitor to a
set twice changes nothing, so a hit delivered twice counts once. Days are the
team's (TIME_ZONE); after changing it, or to count page views written before
the sets existed, `manage.py traffic_visitors_rebuild` rebuilds them day by day.
The sets hold numbers (traffic.VisitorNumber), not visitor ids, and stay when a
month of page views is dropped, so past months keep their visitor counts.
"""

from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from pyroaring import BitMap

from core.batches import batched

from .models import DailyVisitors, PageView, VisitorKind, VisitorNumber

SLICE_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "landing_path")
_CHUNK = 5000


def _numbers(visitor_ids, number_model=VisitorNumber) -> dict[str, int]:
    """Each visitor id's number, made for the ids that have none yet."""
    numbers = {}
    for chunk in batched(sorted(set(visitor_ids)), _CHUNK):
        number_model.objects.bulk_create([number_model(visitor_id=v) for v in chunk], ignore_conflicts=True)
        numbers.update(number_model.objects.filter(visitor_id__in=chunk).values_list("visitor_id", "id"))
    return numbers


def _grouped(rows) -> dict[tuple, set[str]]:
    """(day, whole_day, source, medium, campaign, landing path) -> visitor ids, for rows of
    (received_at, visitor_id, utm_source, utm_medium, utm_campaign, landing_path)."""
    groups: dict[tuple, set[str]] = defaultdict(set)
    for received_at, visitor_id, *attribution in rows:
        day = timezone.localdate(received_at)
        groups[(day, False, *attribution)].add(visitor_id)
        groups[(day, True, "", "", "", "")].add(visitor_id)
    return groups


def _key(key: tuple) -> dict:
    return dict(zip(("day", "whole_day", *SLICE_FIELDS), key, strict=True))


def _write(groups: dict[tuple, set[str]], numbers: dict[str, int], *, set_model=DailyVisitors) -> None:
    """Add the visitors to their sets: a set is only ever added to, under a lock, so two writers of one day (two
    ingestion batches, or a batch and a rebuild) both land."""
    for key in sorted(groups):  # one order for every writer: two batches never wait on each other in a cycle
        added = BitMap(numbers[v] for v in groups[key])
        row = set_model.objects.select_for_update().filter(**_key(key)).first()
        if row is None:
            try:
                with transaction.atomic():
                    set_model.objects.create(**_key(key), visitors=added.serialize(), count=len(added))
                continue
            except IntegrityError:  # another writer made it meanwhile: add to theirs
                row = set_model.objects.select_for_update().get(**_key(key))
        merged = BitMap.deserialize(bytes(row.visitors)) | added
        set_model.objects.filter(pk=row.pk).update(visitors=merged.serialize(), count=len(merged))


def visitors_record(views) -> None:
    """Add the human page views' visitors to their days' sets. Called in the transaction that writes them."""
    rows = [(v.received_at, v.visitor_id, *(getattr(v, f) for f in SLICE_FIELDS))
            for v in views if v.kind == VisitorKind.HUMAN]
    if not rows:
        return
    groups = _grouped(rows)
    with transaction.atomic():
        _write(groups, _numbers(r[1] for r in rows))


def visitors_rebuild_day(day: date, *, view_model=PageView, number_model=VisitorNumber,
                         set_model=DailyVisitors) -> int:
    """Build the day's sets again from its page views (the models: a data migration's). Returns the sets.

    The day's sets are deleted first and its page views read after, in one transaction: a batch being written
    meanwhile either committed before the read (its views are read) or adds its visitors to the new sets after
    (a set is only added to), so none is lost."""
    zone = timezone.get_current_timezone()
    since = timezone.make_aware(datetime.combine(day, time.min), zone)
    until = timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min), zone)
    with transaction.atomic():
        set_model.objects.filter(day=day).delete()
        rows = list(view_model.objects.filter(received_at__gte=since, received_at__lt=until, kind=VisitorKind.HUMAN)
                    .order_by().values_list("received_at", "visitor_id", *SLICE_FIELDS).iterator(chunk_size=20000))
        groups = _grouped(rows)
        _write(groups, _numbers((r[1] for r in rows), number_model), set_model=set_model)
    return len(groups)


def visitors_rebuild(*, view_model=PageView, number_model=VisitorNumber, set_model=DailyVisitors, log=None) -> int:
    """Build every day's sets again from the page views, day by day. Returns the days rebuilt."""
    first = view_model.objects.order_by("received_at").values_list("received_at", flat=True).first()
    last = view_model.objects.order_by("-received_at").values_list("received_at", flat=True).first()
    if first is None:
        set_model.objects.all().delete()
        return 0
    day, days = timezone.localdate(first), 0
    set_model.objects.filter(day__lt=day).delete()
    while day <= timezone.localdate(last):
        sets = visitors_rebuild_day(day, view_model=view_model, number_model=number_model, set_model=set_model)
        days += 1
        if log:
            log(f"{day}: {sets} sets")
        day += timedelta(days=1)
    set_model.objects.filter(day__gt=day).delete()
    return days


def distinct_visitors(start: date, end: date, **slice_values) -> int:
    """Distinct human visitors from day `start` to day `end` (both included, on the team's clock). Keyword
    arguments narrow it by the visit's attribution: utm_source, utm_medium, utm_campaign, landing_path, each a
    value or, with `__in`, a list or a query of values."""
    unknown = {name.split("__")[0] for name in slice_values} - set(SLICE_FIELDS)
    if unknown:
        raise TypeError(f"distinct_visitors() cannot narrow by {', '.join(sorted(unknown))}")
    sets = DailyVisitors.objects.filter(day__gte=start, day__lte=end, whole_day=not slice_values, **slice_values)
    union = BitMap()
    for chunk in batched(sets.values_list("visitors", flat=True).iterator(chunk_size=2000), 500):
        union |= BitMap.union(*(BitMap.deserialize(bytes(v)) for v in chunk))
    return len(union)
