from .models import Notification

BELL_CAP = 9


def notification_list(*, user):
    return Notification.objects.filter(recipient=user).only(
        "pk", "kind", "title", "url", "created_at", "read_at", "recipient_id")


def notification_unread_count(*, user, cap: int = BELL_CAP) -> int:
    """Unread notifications of the user, counted up to cap + 1 (the bell shows "9+"): one query on a small index."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(recipient=user, read_at__isnull=True).order_by()[:cap + 1].count()
