from django import template

from ..selectors import BELL_CAP, notification_unread_count

register = template.Library()


@register.inclusion_tag("notifications/bell.html", takes_context=True)
def notifications_bell(context):
    """The bell with the user's unread count (one query), refreshed by htmx every minute."""
    request = context.get("request")
    count = notification_unread_count(user=request.user) if request is not None else 0
    return {"count": count, "shown": f"{BELL_CAP}+" if count > BELL_CAP else str(count)}
