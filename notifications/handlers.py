def erase_person(sender, *, lead_ids, deleted, **kwargs):
    """A person erased (leads.signals.person_erasing): the notifications about them go, since their titles name
    the person and quote what a rep typed about them."""
    from .models import Notification

    deleted["notifications"], _ = Notification.objects.filter(lead_id__in=lead_ids).delete()
