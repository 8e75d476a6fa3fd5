"""The SMTP server fails mid-run (down for a minute, 4xx, 5xx, no answer after the whole message) while a real
Celery worker sends from PostgreSQL through Redis: nothing is sent twice, nothing due is left unsent or unexplained.

- down and 4xx: the batch waits (back-off) and each email goes once when the server is back;
- 5xx: the refused emails fail with the server's words and are never offered again;
- no answer once the message is in: that email is `unknown` with the reason and never offered again, the rest go.
"""

import time

import pytest

from nurturing.models import Delivery
from nurturing.tasks import dispatch_due
from tests.faults.faulty_mail import FaultySmtp
from tests.faults.report import fault_record
from tests.faults.sending import drained, due_emails, outcome
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMTP_TIMEOUT = 2  # the worker's EMAIL_TIMEOUT: a server that stops answering is given up on this fast


@pytest.fixture
def smtp():
    with FaultySmtp() as server:
        yield server


@pytest.fixture
def worker_env(smtp):
    return {
        "EMAIL_URL": smtp.url, "TEST_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_TIMEOUT": str(SMTP_TIMEOUT), "CRM_NURTURE_RETRY_SECONDS": "1", "CRM_NURTURE_BATCH_SIZE": "100",
    }


def start(worker):
    started = time.monotonic()
    dispatch_due.apply_async(queue=worker.queue)
    return started


def test_an_smtp_server_down_for_a_minute_gets_each_email_once_when_it_is_back(celery_worker_process, smtp):
    due_emails(200)
    fault = {}

    def go_down():
        smtp.down()
        fault["start"] = time.monotonic()

    smtp.when_accepted(60, go_down)
    start(celery_worker_process)
    assert wait_for(lambda: "start" in fault, timeout=30), celery_worker_process.log()
    time.sleep(3)
    during = Delivery.objects.filter(status="sent").count()
    time.sleep(max(0.0, 60 - (time.monotonic() - fault["start"])))
    still_during = Delivery.objects.filter(status="sent").count()
    smtp.up()
    fault_end = time.monotonic()
    done = drained(timeout=90)

    assert done, celery_worker_process.log()[-3000:]
    result = outcome(smtp.received())
    assert during == still_during  # nothing went while it was down (and nothing failed for good)
    assert "Transient send error, retrying" in celery_worker_process.log()
    assert (result.duplicates, result.lost) == (0, 0)
    assert not result.ids("failed")
    # Only a message the server had in full when it went down can be unknown, and it says so.
    assert all("may or may not have gone out" in result.reasons[pk] for pk in result.unknown)
    assert len(result.ids("sent")) + len(result.unknown) == 200
    fault_record("smtp_down_one_minute", recovery_s=done - fault_end, duplicates=result.duplicates, lost=result.lost,
                 unknown=len(result.unknown), explained=result.explained, emails_due=200,
                 emails_received=len(result.received), sent_before_the_fault=during, down_s=60)


def test_an_smtp_server_answering_4xx_gets_each_email_once_when_it_accepts_again(celery_worker_process, smtp):
    due_emails(200)
    fault = {}

    def busy():
        smtp.set("4xx")
        fault["start"] = time.monotonic()

    smtp.when_accepted(50, busy)
    start(celery_worker_process)
    assert wait_for(lambda: "start" in fault, timeout=30)
    time.sleep(5)
    smtp.set("ok")
    fault_end = time.monotonic()
    done = drained(timeout=60)

    assert done, celery_worker_process.log()[-3000:]
    result = outcome(smtp.received())
    refused = smtp.collector.refusals["451"]
    assert refused >= 1
    assert (result.duplicates, result.lost, result.unknown) == (0, 0, [])
    assert len(result.ids("sent")) == 200 and not result.ids("failed")
    fault_record("smtp_4xx", recovery_s=done - fault_end, duplicates=0, lost=0, unknown=0, emails_due=200,
                 emails_received=len(result.received), refusals_451=refused, busy_s=5)


def test_an_smtp_server_answering_5xx_fails_those_emails_with_its_words_and_never_offers_them_again(celery_worker_process, smtp):
    due_emails(100)
    addresses = {f"bulk{i}@example.org" for i in range(0, 100, 10)}
    smtp.when_accepted(30, lambda: smtp.collector.refused_for_good.update(addresses))
    started = start(celery_worker_process)
    done = drained(timeout=60)

    assert done, celery_worker_process.log()[-3000:]
    result = outcome(smtp.received())
    failed = result.ids("failed")
    assert 1 <= len(failed) <= 10
    assert all("550" in result.reasons[pk] and "No such mailbox here" in result.reasons[pk] for pk in failed)
    refused = Delivery.objects.filter(status="failed").values_list("enrollment__lead__email", flat=True)
    assert set(refused) <= addresses
    assert all(smtp.collector.rcpt_offers[address] == 1 for address in refused)  # never offered again
    assert (result.duplicates, result.lost, result.unknown) == (0, 0, [])
    assert len(result.ids("sent")) + len(failed) == 100
    fault_record("smtp_5xx", recovery_s=None, duplicates=0, lost=0, unknown=0, emails_due=100,
                 emails_received=len(result.received), failed_with_reason=len(failed), drained_s=round(done - started, 2))


def test_an_smtp_server_that_never_answers_a_whole_message_leaves_it_unknown_and_never_resends_it(celery_worker_process, smtp):
    due_emails(100)
    smtp.when_accepted(30, lambda: smtp.set("hang"))
    start(celery_worker_process)
    assert wait_for(lambda: Delivery.objects.filter(status="unknown").exists(), timeout=30), celery_worker_process.log()
    fault_end = time.monotonic()  # the worker gave up on the server (EMAIL_TIMEOUT)
    done = drained(timeout=60)

    assert done, celery_worker_process.log()[-3000:]
    result = outcome(smtp.received())
    assert len(smtp.collector.unanswered) == 1
    hung = smtp.collector.unanswered[0]
    assert result.unknown == [hung]
    assert result.reasons[hung].startswith("The mail server did not answer once it had the whole message")
    assert "it is not sent again" in result.reasons[hung]
    address = Delivery.objects.get(pk=hung).enrollment.lead.email
    assert smtp.collector.rcpt_offers[address] == 1 and hung not in result.received  # never offered again
    assert (result.duplicates, result.lost) == (0, 0)
    assert len(result.ids("sent")) == 99
    fault_record("smtp_hang_mid_data", recovery_s=done - fault_end, duplicates=0, lost=0, unknown=1,
                 explained=result.explained, emails_due=100, emails_received=len(result.received),
                 smtp_timeout_s=SMTP_TIMEOUT)
