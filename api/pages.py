"""The API tokens page: each user makes (and sees once), lists and revokes their own tokens."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from leads.forms import add_service_errors
from workspace.views import workspace_view

from . import services
from .forms import TokenForm
from .models import ApiToken


@workspace_view
def token_list(request, *, access):
    new_token, status = None, 200
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            try:
                made = services.api_token_create(
                    user=request.user, name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"],
                    expires_at=form.expires_at(), by=request.user,
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
                status = 422
            else:
                # Shown in this answer only: the page is not cached, and the token is not stored.
                new_token, form = made, TokenForm()
        else:
            status = 422
    else:
        form = TokenForm()
    tokens = ApiToken.objects.filter(user=request.user).select_related("revoked_by")
    response = render(request, "api/tokens.html", {"form": form, "tokens": tokens, "new_token": new_token,
                                                   "nav": "tokens"}, status=status)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@workspace_view
def token_revoke(request, pk, *, access):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    services.api_token_revoke(token=token, by=request.user)
    messages.success(request, f"Revoked “{token.name}”: it no longer works.")
    return redirect("api:tokens")
