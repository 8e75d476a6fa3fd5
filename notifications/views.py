"""The notifications page, opening one, marking all read, the digest choice and the bell's refresh."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from core.pagination import BoundedCountPaginator
from core.policy import access_for

from . import digest, selectors, services
from .forms import DigestForm
from .templatetags.notifications import notifications_bell

PAGE_SIZE = 25


def notifications_view(view):
    """Login required; users with no role in the CRM get 403."""

    @wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        if not access_for(request.user).has_workspace:
            raise PermissionDenied("Your account has no role in the CRM yet: ask a manager to add you to one.")
        return view(request, *args, **kwargs)

    return wrapped


@require_GET
@notifications_view
def notification_list(request):
    page = BoundedCountPaginator(selectors.notification_list(user=request.user), PAGE_SIZE).get_page(
        request.GET.get("page"))
    choices = digest.notification_settings_get(user=request.user)
    return render(request, "notifications/list.html", {
        "nav": "notifications", "page": page, "digest_form": DigestForm(initial={"email_digest": choices.email_digest}),
        "has_email": bool(request.user.email),
    })


@require_POST
@notifications_view
def notification_open(request, pk):
    notification = services.notification_get(pk=pk, user=request.user)
    services.notification_mark_read(notification=notification, by=request.user)
    url = notification.url
    if not url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        url = "notifications:list"
    return redirect(url)


@require_POST
@notifications_view
def notifications_read_all(request):
    count = services.notifications_mark_all_read(user=request.user)
    messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked read.")
    return redirect("notifications:list")


@require_POST
@notifications_view
def notification_settings(request):
    form = DigestForm(request.POST)
    form.is_valid()  # one optional checkbox: always valid
    on = form.cleaned_data.get("email_digest", False)
    digest.notification_settings_update(user=request.user, email_digest=on)
    messages.success(request, "The daily email digest is on." if on else "The daily email digest is off.")
    return redirect("notifications:list")


@require_GET
def notification_bell(request):
    if not request.user.is_authenticated:
        # Polled by htmx: a session that ended gets nothing to swap in (not the login page inside the nav).
        return HttpResponse(status=204)
    return render(request, "notifications/bell.html", notifications_bell({"request": request}))
