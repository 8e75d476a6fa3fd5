"""The audience's page in the admin: its customer-match files for Google Ads and Meta (downloaded now, or a
private feed address an ad platform fetches), and the feeds made so far with their revoke buttons."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from core.policy import access_for

from . import services
from .models import Audience, AudienceFeed
from .retargeting import customer_match_response, export_counts


def _when(moment) -> str:
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT") if moment else "never"


class AudienceRetargetingMixin:
    """For AudienceAdmin: the `ad_platforms` read-only field and its three views."""

    def _check(self, request):
        if not access_for(request.user).builds_sequences:
            raise PermissionDenied

    def ad_platforms(self, obj):
        if obj.pk is None:
            return "Save the audience to export it for an ad platform."
        feeds = list(obj.feeds.select_related("created_by")[:20])
        downloads = format_html_join(" ", '<a class="button" href="{}">Download for {}</a>', (
            (reverse("admin:nurturing_audience_customer_match", args=[obj.pk, platform]), label)
            for platform, label in AudienceFeed.Platform.choices))
        downloads += format_html(' <a class="button" href="{}">Count who a file would hold</a>',
                                 reverse("admin:nurturing_audience_export_counts", args=[obj.pk]))
        make = format_html_join(" ", '<button type="submit" class="button" formmethod="post" formaction="{}" '
                                     'name="platform" value="{}">New feed for {}</button>', (
            (reverse("admin:nurturing_audience_feed_create", args=[obj.pk]), platform, label)
            for platform, label in AudienceFeed.Platform.choices))
        rows = format_html_join("", '<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>', (
            (feed.get_platform_display(), _when(feed.created_at), _when(feed.last_fetched_at),
             format_html("revoked {}", _when(feed.revoked_at)) if feed.revoked_at else format_html(
                 '<button type="submit" class="button" formmethod="post" formaction="{}">Revoke</button>',
                 reverse("admin:nurturing_audience_feed_revoke", args=[obj.pk, feed.pk])))
            for feed in feeds))
        table = format_html('<table id="audience-feeds"><thead><tr><th>Feed</th><th>Made</th><th>Last fetched</th>'
                            '<th></th></tr></thead><tbody>{}</tbody></table>', rows) if feeds else ""
        return format_html(
            '<p>{}</p><p>{}</p>{}<p class="help">Hashed (SHA-256) emails and phone numbers with their country code, '
            "as each platform documents its customer-match upload; leads without consent and every address on the "
            "suppression list are left out. A feed is a private address that gives the file as the audience is at "
            "each fetch; each download and fetch is in the event log.</p>", downloads, make, table)

    ad_platforms.short_description = "ad platforms"

    def retargeting_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:audience_id>/customer-match/<slug:platform>/", view(self.customer_match_view),
                 name="nurturing_audience_customer_match"),
            path("<int:audience_id>/file-counts/", view(self.export_counts_view),
                 name="nurturing_audience_export_counts"),
            path("<int:audience_id>/feeds/", view(require_POST(self.feed_create_view)),
                 name="nurturing_audience_feed_create"),
            path("<int:audience_id>/feeds/<int:feed_id>/revoke/", view(require_POST(self.feed_revoke_view)),
                 name="nurturing_audience_feed_revoke"),
        ]

    def customer_match_view(self, request, audience_id, platform):
        self._check(request)
        audience = get_object_or_404(Audience, pk=audience_id)
        if platform not in AudienceFeed.Platform.values:
            raise Http404("No such ad platform: google or meta.")
        services.audience_export_record(audience=audience, platform=platform, by=request.user)
        return customer_match_response(audience, platform)

    def export_counts_view(self, request, audience_id):
        """Read the audience as a file would (nothing is exported, no event): how many go in, and why not the rest."""
        self._check(request)
        audience = get_object_or_404(Audience, pk=audience_id)
        counts = export_counts(audience)
        left_out = sum(counts.left_out.values())
        why = "; ".join(f"{count:,} {reason}" for reason, count in sorted(counts.left_out.items(), key=lambda kv: (-kv[1], kv[0])))
        self.message_user(request, f"A file of this audience would hold {counts.exported:,} "
                                   f"{'lead' if counts.exported == 1 else 'leads'} now"
                                   + (f"; {left_out:,} left out: {why}." if left_out else "; none left out."),
                          messages.INFO)
        return HttpResponseRedirect(reverse("admin:nurturing_audience_change", args=[audience_id]))

    def feed_create_view(self, request, audience_id):
        self._check(request)
        audience = get_object_or_404(Audience, pk=audience_id)
        platform = request.POST.get("platform", "")
        if platform not in AudienceFeed.Platform.values:
            self.message_user(request, "Choose Google Ads or Meta for the feed.", messages.ERROR)
        else:
            feed, token = services.audience_feed_create(audience=audience, platform=platform, by=request.user)
            address = request.build_absolute_uri(reverse("nurturing:audience_feed", args=[token]))
            self.message_user(request, format_html(
                "{} feed made. Its address, shown this once (give it to {} as the list's source; revoke it below "
                "to stop it): <code>{}</code>", feed.get_platform_display(), feed.get_platform_display(), address),
                messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:nurturing_audience_change", args=[audience_id]))

    def feed_revoke_view(self, request, audience_id, feed_id):
        self._check(request)
        feed = get_object_or_404(AudienceFeed, pk=feed_id, audience_id=audience_id)
        services.audience_feed_revoke(feed=feed, by=request.user)
        self.message_user(request, f"{feed.get_platform_display()} feed revoked: its address gives nothing now.",
                          messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:nurturing_audience_change", args=[audience_id]))
