"""The API speaks JSON only: whatever a client's Accept header says, the answer is JSON (or problem+json)."""

from rest_framework.negotiation import DefaultContentNegotiation


class JsonOnly(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
