"""How a person is named on pages and in messages."""


def person_name(user) -> str:
    """The user's full name ("Tom Becker"), or their username when they have none; "" for no user."""
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()
