"""The short way through the middleware for the public machine endpoints.

The tracking beacon and pixel, a form's JSON endpoint and its fill-time token
are called by scripts on the team's websites, thousands of times a minute, and
answer a status, a pixel or a few bytes of JSON. They read no cookie and render
no page, so the middleware for pages people use while signed in (sessions,
authentication, CSRF, messages, CSP, frame options, htmx, the login lockout)
has nothing to do for them but costs about as much as the endpoint itself.

LeanEndpointMiddleware, placed after SecurityMiddleware (HTTPS redirect, HSTS,
nosniff) and WhiteNoise, answers such a request by calling its view at once.
A view takes this way only when it is marked with @lean_endpoint and its path
starts with one of CRM_LEAN_PATH_PREFIXES; any other request costs one string
comparison. The request's host is still checked against ALLOWED_HOSTS, and an
exception in the view is answered as Django answers it anywhere else.
"""

from django.conf import settings
from django.urls import Resolver404, resolve


def lean_endpoint(view):
    """Mark a view to be answered by LeanEndpointMiddleware (it must need no session, user, CSRF or CSP)."""
    view.lean_endpoint = True
    return view


class LeanEndpointMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.prefixes = tuple(settings.CRM_LEAN_PATH_PREFIXES)

    def __call__(self, request):
        if self.prefixes and request.path_info.startswith(self.prefixes):
            try:
                match = resolve(request.path_info)
            except Resolver404:
                match = None
            if match is not None and getattr(match.func, "lean_endpoint", False):
                request.get_host()  # raises DisallowedHost (a 400) for a host not in ALLOWED_HOSTS
                request.resolver_match = match
                return match.func(request, *match.args, **match.kwargs)
        return self.get_response(request)
