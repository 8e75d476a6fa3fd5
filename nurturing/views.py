"""Public pages of the nurturing engine: unsubscribing, without login (the signed link is the key)."""

from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from .compose import BadUnsubscribeLink, unsubscribe_token_read
from .engagement import unsubscribe_by_link


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
