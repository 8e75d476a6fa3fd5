"""Erasing a person takes the notifications about them with it."""

from notifications.models import Notification
from nurturing.privacy import person_erase
from tests.factories import LeadFactory


def test_erasing_a_person_deletes_the_notifications_that_name_them(manager_user, rep_user):
    lead, other = LeadFactory(owner=rep_user, first_name="Ada"), LeadFactory(owner=rep_user)
    for n, about in enumerate((lead, lead, other)):
        Notification.objects.create(recipient=rep_user, kind="reply", lead=about, title=f"{about} replied",
                                    url="/today/", source=f"event:{n}")

    result = person_erase(lead=lead, by=manager_user)

    assert result.deleted["notifications"] == 2
    assert list(Notification.objects.values_list("lead_id", flat=True)) == [other.pk]
