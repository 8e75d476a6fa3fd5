"""Traffic: the page views of the team's own website, recorded by its tracking snippet.

A page view is written by the ingest worker, never in the request (see
traffic.ingest). On PostgreSQL the table is partitioned by month on
`received_at` (migration 0002, and `traffic_partitions_ensure` keeps the next
months ready), so old months are dropped whole and a day's rows are read from
one partition. Reports read `TrafficDaily`, rolled up per day.

No raw IP address is stored: `address_hash` is an HMAC of it under a salt made
at random each day and deleted after two days (TrackingSalt), so it tells hits
of one day apart (bursts) and cannot be turned back into an address.
"""

from django.db import models

from core.attribution import UtmFields


class VisitorKind(models.TextChoices):
    HUMAN = "human", "Person"
    BOT = "bot", "Bot"
    CUSTOMER = "customer", "Existing customer"
    TEAM = "team", "Team member"


class Device(models.TextChoices):
    DESKTOP = "desktop", "Desktop"
    MOBILE = "mobile", "Mobile"
    TABLET = "tablet", "Tablet"
    OTHER = "other", "Other"


class PageView(UtmFields):
    id = models.BigAutoField(primary_key=True)
    # Made by the endpoint when it accepted the hit: with received_at, what makes a hit
    # delivered twice by the queue one row.
    hit_id = models.UUIDField()
    received_at = models.DateTimeField()
    visitor_id = models.CharField(max_length=40)
    url = models.CharField(max_length=2000)
    host = models.CharField(max_length=255)
    path = models.CharField(max_length=500)
    title = models.CharField(max_length=300, blank=True)
    referrer = models.CharField(max_length=2000, blank=True)
    referrer_host = models.CharField(max_length=255, blank=True)
    # The visit's attribution (its UTM fields too), read from its landing page's URL: the snippet sends it with
    # every view.
    landing_path = models.CharField(max_length=500, blank=True)
    click_id_type = models.CharField(max_length=20, blank=True)
    click_id = models.CharField(max_length=200, blank=True)
    is_landing = models.BooleanField(default=False)
    has_js = models.BooleanField(default=True)
    device = models.CharField(max_length=10, choices=Device.choices, default=Device.OTHER)
    kind = models.CharField(max_length=10, choices=VisitorKind.choices, default=VisitorKind.HUMAN)
    bot_reason = models.CharField(max_length=120, blank=True)
    address_hash = models.CharField(max_length=16, blank=True)
    # The lead this visitor became (set when the visitor is linked on capture); no foreign
    # key: the table is partitioned on PostgreSQL and stands below the leads app.
    lead_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["visitor_id", "received_at"], name="pageview_visitor"),
            models.Index(fields=["received_at"], name="pageview_received"),
            models.Index(fields=["lead_id", "received_at"], name="pageview_lead"),
        ]
        constraints = [models.UniqueConstraint(fields=["hit_id", "received_at"], name="pageview_hit_once")]

    def __str__(self):
        return f"{self.path} ({self.received_at:%Y-%m-%d %H:%M})"


class VisitorNumber(models.Model):
    """A small whole number for each visitor id with a human page view: what the daily visitor sets hold."""

    id = models.BigAutoField(primary_key=True)
    visitor_id = models.CharField(max_length=40, unique=True)


class DailyVisitors(models.Model):
    """The human visitors of one day (on the team's clock) with one attribution and first landing page, as a set
    of visitor numbers (a serialized Roaring bitmap): sets of several days and slices combine into an exact count
    of distinct visitors without reading the page views again. `whole_day` rows hold the day's every human visitor
    (their attribution fields are blank). Written with the page views (traffic.visitors)."""

    day = models.DateField()
    whole_day = models.BooleanField(default=False)
    utm_source = models.CharField(max_length=200, blank=True)
    utm_medium = models.CharField(max_length=200, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True)
    landing_path = models.CharField(max_length=500, blank=True)
    visitors = models.BinaryField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "whole_day", "utm_source", "utm_medium", "utm_campaign", "landing_path"],
                                    name="dailyvisitors_one_per_slice"),
        ]
        verbose_name_plural = "daily visitors"


class Visitor(models.Model):
    """What is known of a visitor id beyond its hits: the lead it became, or that it is the team's."""

    visitor_id = models.CharField(max_length=40, primary_key=True)
    first_seen_at = models.DateTimeField()
    kind = models.CharField(max_length=10, choices=VisitorKind.choices, default=VisitorKind.HUMAN)
    lead_id = models.BigIntegerField(null=True, blank=True, db_index=True)

    def __str__(self):
        return self.visitor_id


class TrafficDaily(models.Model):
    """Page views and visitors per day, source, medium, campaign, landing path and kind (rebuilt per day)."""

    day = models.DateField()
    utm_source = models.CharField(max_length=200, blank=True)
    utm_medium = models.CharField(max_length=200, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True)
    landing_path = models.CharField(max_length=500, blank=True)
    kind = models.CharField(max_length=10, choices=VisitorKind.choices)
    views = models.PositiveIntegerField(default=0)
    visitors = models.PositiveIntegerField(default=0)
    landings = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day", "kind"], name="trafficdaily_day")]
        verbose_name_plural = "traffic per day"


class TrackingSalt(models.Model):
    """The day's random salt for hashing addresses; deleted after two days, so no hash can be matched again."""

    day = models.DateField(primary_key=True)
    salt = models.CharField(max_length=64)
