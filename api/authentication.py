"""`Authorization: Bearer crm_...`: the request acts as the token's user, under the same policy as the pages."""

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from .models import ApiToken
from .services import TOKEN_START, api_token_mark_used, token_hash


class BearerTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send one token: Authorization: Bearer crm_...")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("That is not a token of this CRM.") from None
        if not raw.startswith(TOKEN_START) or len(raw) > 200:
            raise exceptions.AuthenticationFailed("That is not a token of this CRM.")
        token = ApiToken.objects.select_related("user").filter(token_hash=token_hash(raw)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Unknown token.")
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This token was revoked: make a new one on the API tokens page.")
        if token.is_expired(now):
            raise exceptions.AuthenticationFailed(
                f"This token expired at {token.expires_at:%Y-%m-%d %H:%M} UTC: make a new one on the API tokens page."
            )
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user account is deactivated.")
        api_token_mark_used(token=token, at=now)
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
