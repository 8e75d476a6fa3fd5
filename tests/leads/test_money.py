"""Amounts as people write and read them (leads.money): digits in, separators and the currency out."""

from decimal import Decimal

import pytest

from leads.money import WRITE_IN_DIGITS, amount_in_digits, money_format


@pytest.mark.parametrize(("written", "amount"), [
    ("1000", Decimal("1000")), (" 1000.50 ", Decimal("1000.50")), (".5", Decimal("0.5")), ("-3", Decimal("-3")),
    (1000, Decimal("1000")), (12.5, Decimal("12.5")), (Decimal("1000.00"), Decimal("1000.00")),
])
def test_an_amount_in_digits_is_read(written, amount):
    assert amount_in_digits(written) == amount


@pytest.mark.parametrize("written", ["1e3", "1E3", Decimal("1E+3"), 1e16, "NaN", "Infinity", "-inf", "1,000", "", "١٠٠",
                                     "0x10", "1_000", True, None, [1]])
def test_anything_else_is_refused_saying_how_to_write_it(written):
    with pytest.raises(ValueError, match=WRITE_IN_DIGITS):
        amount_in_digits(written)


@pytest.mark.parametrize(("amount", "shown"), [
    (Decimal("1000"), "1,000 EUR"), (Decimal("1000.00"), "1,000 EUR"), (Decimal("12500.5"), "12,500.50 EUR"),
    (Decimal("9999999999.99"), "9,999,999,999.99 EUR"), (Decimal("0"), "0 EUR"), (Decimal("1E+3"), "1,000 EUR"),
    (250, "250 EUR"),
])
def test_an_amount_shows_with_thousands_separators_and_its_currency(amount, shown):
    assert money_format(amount, "EUR") == shown


def test_no_amount_shows_as_nothing():
    assert money_format(None, "EUR") == ""
