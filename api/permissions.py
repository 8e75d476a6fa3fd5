"""What a token may do: its scopes, and its user's role (the permission policy decides the rest, per lead)."""

from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from core.policy import access_for


class MissingScope(exceptions.PermissionDenied):
    def __init__(self, scope: str):
        super().__init__(f"This token lacks the scope {scope}: make a token with it on the API tokens page.")
        self.problem_extra = {"missing_scope": scope}


class TokenScopes(BasePermission):
    """The view names the scope each method needs (`required_scopes = {"GET": "leads:read", ...}`)."""

    def has_permission(self, request, view):
        token = request.auth
        if token is None or request.user is None:
            raise exceptions.NotAuthenticated("Send a personal API token: Authorization: Bearer crm_...")
        # A method the view does not have needs no scope: it is answered 405.
        scope = getattr(view, "required_scopes", {}).get(request.method)
        if scope is not None and scope not in token.scopes:
            raise MissingScope(scope)
        if not access_for(request.user).has_workspace:
            raise exceptions.PermissionDenied("Your account has no role in the CRM yet: ask a manager to add you to one.")
        return True
