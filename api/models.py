"""Personal API tokens and the idempotency keys of the API's creating requests.

A token is shown once, when it is made; only its SHA-256 is kept, so a copy
of the database does not hand out working tokens. `prefix` (shown in lists)
tells a user's tokens apart, and the `crm_` start makes a leaked token easy
to find with a secret scanner.
"""

from django.conf import settings
from django.db import models
from django.utils.timezone import now


class Scope(models.TextChoices):
    LEADS_READ = "leads:read", "Read leads"
    LEADS_WRITE = "leads:write", "Create and change leads"
    EVENTS_READ = "events:read", "Read the event log"
    COMPANIES_READ = "companies:read", "Read companies and customers"
    COMPANIES_WRITE = "companies:write", "Create and change companies"
    ACTIVITIES_READ = "activities:read", "Read calls, notes, meetings and objections"
    ACTIVITIES_WRITE = "activities:write", "Log calls, notes, meetings and objections"
    TASKS_READ = "tasks:read", "Read tasks"
    TASKS_WRITE = "tasks:write", "Create, change and complete tasks"
    DEALS_READ = "deals:read", "Read deals"
    DEALS_WRITE = "deals:write", "Open, change and close deals"
    SEQUENCES_READ = "sequences:read", "Read sequences and enrollments"
    SEQUENCES_WRITE = "sequences:write", "Enroll leads, pause and remove enrollments"
    MARKETING_READ = "marketing:read", "Read form submissions, conversions, campaigns and spend"
    MARKETING_WRITE = "marketing:write", "Create and change campaigns and spend"


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. “Website sync”.")
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=now, editable=False)
    expires_at = models.DateTimeField()
    # Written at most once a minute per token (api.services.api_token_mark_used).
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False,
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="apitoken_user")]

    def __str__(self):
        return f"{self.name} (crm_{self.prefix}_…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, at=None) -> bool:
        return self.expires_at <= (at or now())

    def scope_labels(self) -> list[str]:
        return [Scope(scope).label if scope in Scope.values else scope for scope in self.scopes]


class IdempotencyKey(models.Model):
    """The first response to a creating POST sent with an Idempotency-Key, replayed for a retry with that key.

    Unique per token and key: two requests racing with one key make one row,
    and the second waits for the first's transaction, then replays its answer.
    """

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # SHA-256 of the method, the path and the body: the same key with another request is refused.
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["token", "key"], name="idempotencykey_one_per_token")]
        indexes = [models.Index(fields=["created_at"], name="idempotencykey_created")]

    def __str__(self):
        return f"{self.key} ({self.status_code or 'pending'})"
