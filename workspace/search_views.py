"""The global search page (/search/?q=): a full page without JavaScript, the nav's dropdown as a partial."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from . import search
from .views import workspace_view


@require_GET
@workspace_view
def global_search(request, *, access):
    results = search.global_search(access=access, text=request.GET.get("q", ""))
    context = {"results": results, "min_length": search.MIN_LENGTH}
    if request.GET.get("partial") == "1":  # the nav's dropdown (workspace/static/workspace/search.js)
        return render(request, "workspace/partials/search_results.html", context)
    return render(request, "workspace/search.html", {**context, "nav": "search"})
