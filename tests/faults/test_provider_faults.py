"""An email provider's HTTP API (Postmark's, on loopback through django-anymail) answers 429 with Retry-After, or
5xx, mid-run: the batch waits (never less than Retry-After), each email is accepted once and its provider id kept."""

import collections

import pytest

from nurturing.models import Delivery
from nurturing.tasks import dispatch_due
from tests.faults.faulty_mail import FakePostmark
from tests.faults.report import fault_record
from tests.faults.sending import drained, due_emails, outcome

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RETRY_AFTER = 3  # seconds the provider asks for; the worker's own back-off starts at 1


HANG_SECONDS = 6  # a provider that stops answering: longer than the worker's read timeout
READ_TIMEOUT = 2


@pytest.fixture
def provider(request):
    with FakePostmark(plan=request.param, hang_seconds=HANG_SECONDS) as fake:
        yield fake


@pytest.fixture
def worker_env(provider):
    return {
        "TEST_EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend", "ANYMAIL_POSTMARK_SERVER_TOKEN": "fault-test",
        "ANYMAIL_POSTMARK_API_URL": provider.url, "CRM_NURTURE_RETRY_SECONDS": "1", "CRM_NURTURE_BATCH_SIZE": "100",
        "ANYMAIL_REQUESTS_TIMEOUT": str(READ_TIMEOUT),
    }


def sent_through(provider, count):
    """Each email accepted once, with the provider's MessageID on its row."""
    accepted = collections.Counter({delivery: len(ids) for delivery, ids in provider.accepted.items()})
    result = outcome(accepted)
    assert (result.duplicates, result.lost, result.unknown) == (0, 0, [])
    assert len(result.ids("sent")) == count
    recorded = dict(Delivery.objects.values_list("id", "provider_message_id"))
    assert {str(pk): [message_id] for pk, message_id in recorded.items()} == provider.accepted
    return result


def dispatched(worker, emails):
    """`emails` due, the dispatcher's tick sent to the worker: the time every delivery was decided."""
    due_emails(emails)
    dispatch_due.apply_async(queue=worker.queue)
    done = drained(timeout=60)
    assert done, worker.log()[-3000:]
    return done


def refusal_and_next(provider, status):
    """When the first refusal was answered, and when the next request came."""
    times = [(at, answered) for at, _, answered in provider.requests]
    index = next(i for i, (_, answered) in enumerate(times) if answered == status)
    return times[index][0], times[index + 1][0]


@pytest.mark.parametrize("provider", [[(200, None)] * 10 + [(429, RETRY_AFTER)]], indirect=True)
def test_a_provider_answering_429_is_asked_again_no_sooner_than_its_retry_after_and_gets_each_email_once(
        celery_worker_process, provider):
    done = dispatched(celery_worker_process, 40)
    result = sent_through(provider, 40)
    refused_at, next_at = refusal_and_next(provider, 429)
    waited = next_at - refused_at
    assert waited >= RETRY_AFTER - 0.05, waited  # the back-off alone would have asked again after 1 s
    fault_record("provider_429_retry_after", recovery_s=done - (refused_at + RETRY_AFTER), duplicates=0, lost=0, unknown=0,
                 emails_due=40, emails_accepted=len(result.received), requests=len(provider.requests),
                 retry_after_s=RETRY_AFTER, waited_s=round(waited, 2), message_ids_recorded=40)


@pytest.mark.parametrize("provider", [[(200, None)] * 10 + [(503, None), (500, None)]], indirect=True)
def test_a_provider_answering_5xx_is_asked_again_with_back_off_and_gets_each_email_once(celery_worker_process, provider):
    done = dispatched(celery_worker_process, 40)
    result = sent_through(provider, 40)
    assert [answered for _, _, answered in provider.requests].count(200) == 40
    _, recovered_at = refusal_and_next(provider, 500)
    first_refusal, _ = refusal_and_next(provider, 503)
    assert recovered_at - first_refusal >= 1 + 2 - 0.1  # two waits of the back-off: 1 s, then 2 s
    fault_record("provider_5xx", recovery_s=done - recovered_at, duplicates=0, lost=0, unknown=0, emails_due=40,
                 emails_accepted=len(result.received), requests=len(provider.requests), refusals_5xx=2,
                 outage_s=round(recovered_at - first_refusal, 2))


@pytest.mark.parametrize("provider", [[(200, None)] * 10 + [("hang", None)]], indirect=True)
def test_a_provider_that_stops_answering_once_it_has_an_email_leaves_that_one_unknown_and_sends_the_rest_once(
        celery_worker_process, provider):
    done = dispatched(celery_worker_process, 40)
    accepted = collections.Counter({delivery: len(ids) for delivery, ids in provider.accepted.items()})
    result = outcome(accepted)
    assert (result.duplicates, result.lost) == (0, 0)
    hung = provider.requests[10][1]
    assert result.unknown == [hung]  # the provider had it: it may have gone out, so it is not sent again
    assert result.reasons[hung].startswith("The mail provider did not answer once it had the request")
    assert len(result.ids("sent")) == 39
    assert [delivery for _, delivery, _ in provider.requests].count(hung) == 1
    hung_at = provider.requests[10][0]
    fault_record("provider_no_answer", recovery_s=done - (hung_at + READ_TIMEOUT), duplicates=0, lost=0, unknown=1,
                 emails_due=40, emails_accepted=len(result.received), requests=len(provider.requests),
                 read_timeout_s=READ_TIMEOUT, explained=result.explained)
