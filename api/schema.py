"""The OpenAPI 3.1 document's parts that the code cannot infer: the token scheme, problem details, strict bodies."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from .problems import CONTENT_TYPE


class FieldError(serializers.Serializer):
    field = serializers.CharField(allow_null=True, help_text="The body field (a dotted path), query parameter or header.")
    detail = serializers.CharField()


class Problem(serializers.Serializer):
    """RFC 9457 problem details."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField()
    errors = FieldError(many=True, required=False, help_text="For invalid input: what was wrong, by field.")
    missing_scope = serializers.CharField(required=False, help_text="For a 403 on a token without the scope needed.")


_DESCRIPTIONS = {
    400: "Invalid input (malformed JSON, a wrong type, an unknown field or parameter): `errors` names each field.",
    401: "No token, or an unknown, expired or revoked one.",
    403: "The token lacks the scope (`missing_scope`), or the policy does not let its user do this.",
    404: "No such lead (or record: a deal, a task, ...), or not one the token's user may see.",
    422: "The request breaks a rule of the service (a duplicate email, a stage move the pipeline does not allow, "
         "an Idempotency-Key reused for another request): `errors` names the field.",
    429: "Too many requests for this token: wait for `Retry-After` seconds.",
}


def problems(*codes: int) -> dict:
    """Documented error responses, each as problem details."""
    return {(code, CONTENT_TYPE): OpenApiResponse(Problem, description=_DESCRIPTIONS[code]) for code in codes}


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerTokenAuthentication"
    name = "personalToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (`crm_...`), made on the API tokens page; it acts as its user.",
        }


def forbid_unknown_request_fields(result, generator, request, public):
    """drf-spectacular postprocessing hook: request bodies take no fields beyond those listed (as the API checks)."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result
