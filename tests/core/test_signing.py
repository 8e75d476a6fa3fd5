"""core.signing.dumps gives Django's signing.dumps token, so signing.loads reads it with its checks."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import signing
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from core import signing as fast_signing

T0 = datetime(2026, 3, 9, 14, 30, 5, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(obj=json_values, salt=st.sampled_from(["crm.nurturing.unsubscribe", "booking.lead", "ünïcode salt"]),
       compress=st.booleans())
def test_the_token_is_djangos_at_the_same_second(obj, salt, compress):
    with time_machine.travel(T0, tick=False):
        assert fast_signing.dumps(obj, salt=salt, compress=compress) == signing.dumps(obj, salt=salt, compress=compress)


def test_a_payload_that_shrinks_is_compressed_and_reads_back():
    obj = {"a": "ab" * 60}
    with time_machine.travel(T0, tick=False):
        token = fast_signing.dumps(obj, salt="s", compress=True)
        assert token.startswith(".")
        assert signing.loads(token, salt="s") == obj


def test_a_token_is_bound_to_its_salt_and_key_and_expires():
    with time_machine.travel(T0, tick=False):
        token = fast_signing.dumps({"l": 7}, salt="one")
    with time_machine.travel(T0 + timedelta(seconds=30), tick=False):
        assert signing.loads(token, salt="one", max_age=60) == {"l": 7}
        with pytest.raises(signing.BadSignature):
            signing.loads(token, salt="two")
        with pytest.raises(signing.BadSignature):
            signing.loads(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], salt="one")
    with time_machine.travel(T0 + timedelta(seconds=61), tick=False), pytest.raises(signing.SignatureExpired):
        signing.loads(token, salt="one", max_age=60)


def test_a_new_secret_key_signs_with_the_new_key_and_the_old_one_still_reads():
    with time_machine.travel(T0, tick=False):
        old = fast_signing.dumps({"l": 7}, salt="s")
        with override_settings(SECRET_KEY="a-new-key-" * 5, SECRET_KEY_FALLBACKS=[]):
            new = fast_signing.dumps({"l": 7}, salt="s")
            assert new == signing.dumps({"l": 7}, salt="s")
            with pytest.raises(signing.BadSignature):
                signing.loads(old, salt="s")
        assert new != old
        assert signing.loads(old, salt="s") == {"l": 7}
