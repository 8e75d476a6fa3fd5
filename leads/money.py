"""Amounts of money as people write and read them.

An amount is written in digits ("1000", "1000.50"): scientific notation ("1e3"), "NaN" and "Infinity" are
not amounts a person means, and a "1e3" let through shows as "1E+3 EUR" in every message and in the stage
history for good. The services refuse them, and the forms and the API refuse them the same way.

An amount is shown with thousands separators and its currency: "1,000 EUR", "12,500.50 EUR".
"""

import re
from decimal import Decimal

WRITE_IN_DIGITS = "Write the amount in digits, e.g. 1000 or 1000.50."

_IN_DIGITS = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def amount_in_digits(value) -> Decimal:
    """`value` (text, an integer, a float or a Decimal) as a Decimal, if it is written in digits with at most a
    sign and a decimal point; else ValueError(WRITE_IN_DIGITS).

    A Decimal is judged as it prints: one a form or a serializer parsed from "1e3" prints "1E+3" and is refused
    too, so whatever read the text first cannot let it through.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise ValueError(WRITE_IN_DIGITS)
    text = value.strip() if isinstance(value, str) else str(value)
    if not _IN_DIGITS.fullmatch(text):
        raise ValueError(WRITE_IN_DIGITS)
    return Decimal(text)


def money_format(amount, currency: str = "") -> str:
    """"1,000 EUR", "12,500.50 EUR": thousands separated, cents shown when there are some; "" for no amount."""
    if amount is None or amount == "":
        return ""
    amount = Decimal(str(amount))
    digits = f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"
    return f"{digits} {currency}".strip()
