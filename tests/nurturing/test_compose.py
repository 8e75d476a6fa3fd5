"""What every nurture email carries besides its step, exactly: the unsubscribe token, link, headers and footer."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.core import signing

from nurturing.address_hash import email_hash, keyed_hash, unkeyed_hash
from nurturing.compose import (
    BadUnsubscribeLink,
    nurture_email,
    unsubscribe_headers,
    unsubscribe_token,
    unsubscribe_token_read,
    unsubscribe_url,
    with_footer,
)
from nurturing.rendering import RenderedEmail

SALT = "crm.nurturing.unsubscribe"  # a token signed with another salt is not ours
NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def site(settings):
    settings.CRM_SITE_URL = "https://crm.example"
    settings.CRM_POSTAL_ADDRESS = "Acme GmbH\nHauptstr. 1 & 2, 10115 Berlin"
    settings.CRM_UNSUBSCRIBE_MAILTO = "unsubscribe@crm.example"
    settings.CRM_UNSUBSCRIBE_LINK_DAYS = 30
    settings.DEFAULT_FROM_EMAIL = "Acme <hello@acme.example>"


def forged(data) -> str:
    return signing.dumps(data, salt=SALT, compress=True)


# --- The token ------------------------------------------------------------------


def test_a_token_names_the_lead_the_keyed_hash_of_the_address_and_the_delivery():
    token = unsubscribe_token(lead_id=7, email=" Ada@Example.org ", delivery_id=42)

    assert unsubscribe_token_read(token) == (7, email_hash("ada@example.org"), 42)
    assert signing.loads(token, salt=SALT) == {"l": 7, "a": email_hash("ada@example.org"), "d": 42}  # not the address


def test_a_token_without_a_delivery_reads_as_none():
    token = unsubscribe_token(lead_id=7, email="ada@example.org")

    assert "d" not in signing.loads(token, salt=SALT)
    assert unsubscribe_token_read(token) == (7, email_hash("ada@example.org"), None)


def test_a_token_works_to_its_last_day_and_not_a_second_after():
    with time_machine.travel(NOW, tick=False):
        token = unsubscribe_token(lead_id=7, email="ada@example.org")
    with time_machine.travel(NOW + timedelta(days=30), tick=False):
        assert unsubscribe_token_read(token)[0] == 7
    with time_machine.travel(NOW + timedelta(days=30, seconds=1), tick=False):
        with pytest.raises(BadUnsubscribeLink) as expired:
            unsubscribe_token_read(token)
    assert expired.value.code == "expired" and expired.value.message == "This unsubscribe link has expired."


def test_a_changed_token_says_it_may_have_been_cut_or_changed():
    token = unsubscribe_token(lead_id=7, email="ada@example.org")
    for bad in (token[:-1], token + "x", "", signing.dumps({"l": 7, "a": "x"}, salt="another purpose")):
        with pytest.raises(BadUnsubscribeLink) as refused:
            unsubscribe_token_read(bad)
        assert refused.value.code == "invalid"
        assert refused.value.message == "This unsubscribe link is not valid: it may have been cut or changed."


@pytest.mark.parametrize(
    "data",
    [["l", 7], {"a": "x"}, {"l": "7", "a": "x"}, {"l": None, "a": "x"}, {"l": 7}, {"l": 7, "a": 5}, {"l": 7, "h": 5}],
    ids=["not-a-dict", "no-lead", "lead-as-text", "lead-none", "no-hash", "hash-not-text", "old-hash-not-text"],
)
def test_a_signed_token_that_does_not_hold_what_we_sign_is_refused(data):
    with pytest.raises(BadUnsubscribeLink) as refused:
        unsubscribe_token_read(forged(data))
    assert refused.value.code == "invalid" and refused.value.message == "This unsubscribe link is not valid."


def test_a_delivery_that_is_not_a_number_is_ignored():
    assert unsubscribe_token_read(forged({"l": 7, "a": "k:abc", "d": "42"})) == (7, "k:abc", None)


def test_a_link_sent_before_hashes_had_a_key_reads_as_the_keyed_hash_of_its_plain_one():
    plain = unsubscribe_token_read(forged({"l": 7, "h": unkeyed_hash("ada@example.org")}))
    assert plain == (7, email_hash("ada@example.org"), None)
    both = unsubscribe_token_read(forged({"l": 7, "a": "k:other", "h": unkeyed_hash("ada@example.org")}))
    assert both[1] == keyed_hash(unkeyed_hash("ada@example.org"))  # the old field wins: it is what such a link was made for


# --- Link and headers -----------------------------------------------------------


def test_the_link_and_the_headers_are_exactly_what_mail_clients_read():
    assert unsubscribe_url("T0K3N") == "https://crm.example/unsubscribe/T0K3N/"
    assert unsubscribe_headers("a:b") == {
        "List-Unsubscribe": "<https://crm.example/unsubscribe/a:b/>, <mailto:unsubscribe@crm.example?subject=unsubscribe%20a%3Ab>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


# --- The footer -----------------------------------------------------------------


def test_the_plain_text_footer_is_the_postal_address_and_the_link_after_a_signature_line():
    email = with_footer(RenderedEmail(subject="Hi", text="Hello Ada\n\n\n", html=""), "https://crm.example/unsubscribe/T/")

    assert email.subject == "Hi" and email.html == ""
    assert email.text == (
        "Hello Ada\n\n-- \nAcme GmbH\nHauptstr. 1 & 2, 10115 Berlin\nUnsubscribe: https://crm.example/unsubscribe/T/\n"
    )


def test_without_a_postal_address_the_footer_is_the_link_alone(settings):
    settings.CRM_POSTAL_ADDRESS = "  \n "
    email = with_footer(RenderedEmail(subject="Hi", text="Hello", html="<p>Hello</p>"), "https://crm.example/u?a=1&b=2")

    assert email.text == "Hello\n\n-- \nUnsubscribe: https://crm.example/u?a=1&b=2\n"
    assert email.html == (
        '<p>Hello</p><p style="font-size:12px;color:#666;margin-top:24px">'
        '<a href="https://crm.example/u?a=1&amp;b=2">Unsubscribe</a></p>'
    )


def test_the_html_footer_goes_before_the_last_body_end_tag_whatever_its_case_with_the_address_escaped():
    html = "<html><BODY><p>See </body> here</p></BODY></html>"
    email = with_footer(RenderedEmail(subject="Hi", text="Hello", html=html), "https://crm.example/unsubscribe/T/")

    footer = (
        '<p style="font-size:12px;color:#666;margin-top:24px">Acme GmbH<br>Hauptstr. 1 &amp; 2, 10115 Berlin<br>'
        '<a href="https://crm.example/unsubscribe/T/">Unsubscribe</a></p>'
    )
    assert email.html == f"<html><BODY><p>See </body> here</p>{footer}</BODY></html>"


def test_html_without_a_body_end_tag_gets_the_footer_at_its_end():
    email = with_footer(RenderedEmail(subject="Hi", text="x", html="<p>Hi</p>"), "https://crm.example/u")
    assert email.html.startswith("<p>Hi</p><p style=") and email.html.endswith("Unsubscribe</a></p>")


# --- The message ----------------------------------------------------------------


def rendered():
    return RenderedEmail(subject="Hello Ada", text="Hi", html="<html><body>Hi</body></html>")


def test_a_message_from_a_rep_comes_from_them_and_replies_go_to_them():
    rep = SimpleNamespace(email="rita@acme.example", get_full_name=lambda: "Rita Rep", get_username=lambda: "rita")
    token = unsubscribe_token(lead_id=7, email="ada@example.org", delivery_id=3)

    message, final = nurture_email(
        rendered=rendered(), token=token, sender=rep, to="ada@example.org", message_id="<m1@crm.example>",
        headers={"X-Campaign": "guide"},
    )

    assert message.from_email == "Rita Rep <rita@acme.example>" and message.reply_to == ["rita@acme.example"]
    assert message.to == ["ada@example.org"] and message.subject == "Hello Ada"
    assert message.extra_headers == {"Message-ID": "<m1@crm.example>", **unsubscribe_headers(token), "X-Campaign": "guide"}
    assert message.body == final.text and final.text.endswith(f"Unsubscribe: {unsubscribe_url(token)}\n")
    assert message.alternatives[0][0] == final.html and message.alternatives[0][1] == "text/html"
    assert f'<a href="{unsubscribe_url(token)}">Unsubscribe</a></p></body>' in final.html


def test_a_rep_without_a_full_name_is_named_by_username():
    rep = SimpleNamespace(email="rita@acme.example", get_full_name=lambda: "", get_username=lambda: "rita")
    message, _ = nurture_email(rendered=rendered(), token="t", sender=rep, to="ada@example.org", message_id="<m@x>")
    assert message.from_email == "rita <rita@acme.example>"


@pytest.mark.parametrize("sender", [None, SimpleNamespace(email="", get_full_name=lambda: "No Mail", get_username=lambda: "n")])
def test_without_a_sender_address_the_message_comes_from_the_default_with_no_reply_to(sender):
    message, _ = nurture_email(
        rendered=RenderedEmail(subject="S", text="T", html=""), token="t", sender=sender, to="ada@example.org",
        message_id="<m@x>",
    )
    assert message.from_email == "Acme <hello@acme.example>" and message.reply_to == []
    assert message.alternatives == []  # no HTML part when the step has none
    assert message.extra_headers == {"Message-ID": "<m@x>", **unsubscribe_headers("t")}


def test_the_message_goes_out_on_the_connection_it_is_given():
    connection = object()
    message, _ = nurture_email(rendered=rendered(), token="t", sender=None, to="a@x.org", message_id="<m@x>", connection=connection)
    assert message.connection is connection


def test_the_footer_keeps_the_texts_own_trailing_spaces_and_letters_and_drops_only_blank_lines():
    email = with_footer(RenderedEmail(subject="Hi", text="Best,\nTeam X\n\n", html=""), "https://crm.example/u")
    assert email.text.startswith("Best,\nTeam X\n\n-- \n")
    spaced = with_footer(RenderedEmail(subject="Hi", text="Thanks  ", html=""), "https://crm.example/u")
    assert spaced.text.startswith("Thanks  \n\n-- \n")


def test_html_that_starts_with_its_body_end_tag_gets_the_footer_before_it():
    email = with_footer(RenderedEmail(subject="Hi", text="x", html="</body></html>"), "https://crm.example/u")
    assert email.html.startswith('<p style="font-size:12px') and email.html.endswith("</p></body></html>")


def test_a_token_is_compressed_so_links_stay_short():
    token = unsubscribe_token(lead_id=7, email="ada@example.org", delivery_id=42)
    assert token.startswith(".")  # Django marks a compressed payload with a leading dot
