from django import template

from workspace.selectors import saved_view_list

register = template.Library()


@register.inclusion_tag("workspace/partials/saved_views.html", takes_context=True)
def saved_views(context):
    """The user's saved views as quick links above the Leads list, each with its delete button."""
    request = context["request"]
    current = request.GET.copy()
    current.pop("page", None)
    return {"views": saved_view_list(user=request.user), "current": current.urlencode(), "csrf_token": context.get("csrf_token")}
