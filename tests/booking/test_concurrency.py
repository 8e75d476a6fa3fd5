"""Two people can never book the same slot: 50 at once on PostgreSQL, where the requests really run together."""

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from booking.models import Meeting
from booking.views import stamp
from capture.services import fill_token
from leads.models import Lead

from .conftest import at, person

pytestmark = pytest.mark.integration


def test_fifty_bookings_of_one_slot_at_once_book_it_once_and_offer_the_next_free_times(postgres_db, page):
    slot = at("2026-06-02 12:00")
    url = reverse("booking:slot", args=[page.slug, stamp(slot)])
    token = fill_token(page.form)
    barrier, answers = threading.Barrier(50), []

    def book(n):
        try:
            barrier.wait()
            answers.append(Client().post(url, {**person(f"p{n}@example.org"), "tz": "Europe/Berlin",
                                               "crm_token": token}, REMOTE_ADDR=f"198.51.100.{n + 1}"))
        finally:
            connection.close()

    threads = [threading.Thread(target=book, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(answers) == 50
    assert sorted(r.status_code for r in answers) == [302] + [409] * 49
    assert Meeting.objects.filter(starts_at=slot).count() == 1
    # Nothing half-written for those who lost: one lead, the winner's.
    assert Lead.objects.count() == 1
    for refused in (r for r in answers if r.status_code == 409):
        html = refused.content.decode()
        assert "just taken" in html and stamp(at("2026-06-02 12:30")) in html
