"""Email addresses as the CRM stores and matches them."""


def normalize_email(email: str | None) -> str:
    """An address as stored and compared everywhere: trimmed and lower-cased ("" for none).

    Leads, suppressions, their keyed hashes and every lookup by address go
    through this one function, so two spellings of one address always meet.
    """
    return (email or "").strip().lower()
