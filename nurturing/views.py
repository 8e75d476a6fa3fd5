"""Public pages of the nurturing engine, without login: unsubscribing (the signed link is the key) and an
audience's customer-match feed for an ad platform (its secret address is the key)."""

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from .compose import BadUnsubscribeLink, unsubscribe_token_read
from .engagement import unsubscribe_by_link
from .models import AudienceFeed
from .retargeting import customer_match_response
from .services import audience_export_record, feed_token_hash


@csrf_exempt  # RFC 8058: mail clients POST "List-Unsubscribe=One-Click" with no session and no CSRF token
@never_cache
def unsubscribe(request, token):
    """GET: a page with one button. POST (the button, or a mail client's one-click): unsubscribed at once."""
    from django.conf import settings

    context = {"token": token, "mailto": settings.CRM_UNSUBSCRIBE_MAILTO}
    try:
        lead_id, address_hash, delivery_id = unsubscribe_token_read(token)
    except BadUnsubscribeLink as exc:
        context["problem"] = exc.messages[0]
        return render(request, "nurturing/unsubscribe.html", context, status=400)
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        unsubscribe_by_link(lead_id=lead_id, address_hash=address_hash, delivery_id=delivery_id,
                            source="one-click button in the mail client" if one_click else "unsubscribe page")
        return render(request, "nurturing/unsubscribe.html", {**context, "done": True})
    if request.method != "GET":
        return render(request, "nurturing/unsubscribe.html", {**context, "problem": "Use the button below."}, status=405)
    return render(request, "nurturing/unsubscribe.html", context)


@never_cache
def audience_feed(request, token):
    """An audience's customer-match file as it is now, for the ad platform its feed was made for. An unknown or
    revoked address is a 404 (the same answer for both); each fetch is in the event log."""
    if request.method not in ("GET", "HEAD"):
        raise Http404
    feed = AudienceFeed.objects.select_related("audience").filter(
        token_hash=feed_token_hash(token), revoked_at__isnull=True).first()
    if feed is None:
        raise Http404("No such feed: it may have been revoked.")
    audience_export_record(audience=feed.audience, platform=feed.platform, feed=feed)
    return customer_match_response(feed.audience, feed.platform)
