"""Settings shared by every environment.

Everything that differs between a laptop and production is read from the
environment (or a `.env` file at the project root) with django-environ, so the
same code runs on the embedded default (SQLite, filesystem broker, local mail
outbox) and on PostgreSQL + Redis + a real email provider.
"""

from datetime import timedelta
from pathlib import Path

import environ
import xstatic.pkg.bootstrap
from celery.schedules import crontab
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("CRM_VAR_DIR", default=str(BASE_DIR / "var")))
# The embedded default keeps its database, broker queue and outbox here.
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # The admin and anymail with their start-up imports deferred (crm/apps.py): leaner Celery processes.
    "crm.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "crm.apps.AnymailConfig",
    "axes",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Our apps, ground floor first: core <- traffic, leads <- nurturing <- capture <- outbound, imports <- workspace, studio <- api <- crm (wires them).
    "core",
    "traffic",
    "leads",
    "nurturing",
    "capture",
    "outbound",
    "imports",
    "scoring",
    "notifications",
    "booking",
    "workspace",
    "studio",
    "reports",
    "api",
    "crm",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The tracking and form endpoints called by the team's websites skip the rest (core.middleware).
    "core.middleware.LeanEndpointMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Where views marked @lean_endpoint live (core.middleware.LeanEndpointMiddleware): tracking and forms.
CRM_LEAN_PATH_PREFIXES = ("/t/", "/f/", "/api/forms/")

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Content-Security-Policy (django-csp) ------------------------------------
# Every page, the admin's included, loads scripts, styles and images from this
# site only, and has no inline script, event handler or style: an injected
# <script> or onclick does not run. htmx's own indicator <style> is turned off
# (workspace/base.html); the reps' pages style their spinner in app.css.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}

# --- Database -------------------------------------------------------------
# Embedded default: SQLite under var/. WAL lets the web server and the Celery
# worker write at the same time; IMMEDIATE transactions take the write lock up
# front so two writers queue on busy_timeout instead of failing with
# "database is locked" when a read lock cannot be upgraded.
SQLITE_PATH = VAR_DIR / "crm.sqlite3"
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}")}


def _tune_database(db):
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db.setdefault("OPTIONS", {}).update(
            {
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA foreign_keys=ON;"
                ),
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            }
        )
    else:
        db.setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
        db.setdefault("CONN_HEALTH_CHECKS", True)
        if db["ENGINE"] == "django.db.backends.postgresql" and not env.bool("DATABASE_JIT", default=False):
            # PostgreSQL's JIT compiles a report's query for longer than the query runs (up to a second for a year
            # of objections); off per connection. Behind a pooler that refuses startup options, set
            # DATABASE_JIT=true and `ALTER ROLE ... SET jit = off` instead.
            options = db.setdefault("OPTIONS", {})
            options["options"] = f"{options.get('options', '')} -c jit=off".strip()
    return db


_tune_database(DATABASES["default"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# django-axes first: it refuses a locked-out login before the password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

# --- Login throttling (django-axes), on both login pages -----------------------
# After CRM_LOGIN_FAILURE_LIMIT wrong passwords for one username from one IP
# address, that pair is locked out for CRM_LOGIN_COOLOFF_MINUTES; each further
# try starts the wait again, and a right password then is refused too. Locking
# the pair, not the username alone, keeps someone elsewhere from locking a rep
# out of their own account by typing wrong passwords for it; locking it, not
# the address alone, keeps one office behind one address from locking everyone
# out. A manager unlocks in the admin (Axes > Access attempts: delete the rows);
# on the command line, `manage.py axes_reset`.
AXES_FAILURE_LIMIT = env.int("CRM_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("CRM_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "crm.views.login_locked_out"
# The client's address. Behind CRM_TRUSTED_PROXIES reverse proxies, it is the
# one the nearest proxies added to X-Forwarded-For, counted from the right, so
# addresses a client writes into the header itself are never used. Without
# proxies (0, the default) the header is ignored: anyone can send it.
CRM_TRUSTED_PROXIES = env.int("CRM_TRUSTED_PROXIES", default=0)
if CRM_TRUSTED_PROXIES:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    AXES_IPWARE_PROXY_COUNT = CRM_TRUSTED_PROXIES - 1  # ipware counts the hops after the client's
    IPWARE_STRICT = False  # a longer header (what the client sent) is fine; the position still counts from the right
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
# A login lasts a working day (12 hours), not Django's two weeks: the CRM shows
# people's personal data, and a session left open on a shared or lost device
# should not outlive the day. Expiring at browser close is off by default, as
# browsers that restore tabs keep such cookies anyway; the age is the real limit.
SESSION_COOKIE_AGE = env.int("DJANGO_SESSION_COOKIE_AGE", default=12 * 60 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = env.bool("DJANGO_SESSION_EXPIRE_AT_BROWSER_CLOSE", default=False)

# --- Internationalisation -------------------------------------------------
LANGUAGE_CODE = "en-us"
# The account's timezone: leads without their own timezone fall back to it.
TIME_ZONE = env.str("CRM_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Front-end packages come from PyPI, pinned in requirements.txt, and are served
# by the app (WhiteNoise): no CDN, so the pages work without internet.
STATICFILES_DIRS = [("bootstrap", xstatic.pkg.bootstrap.BASE_DIR)]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Email ----------------------------------------------------------------
# Default: every message is written to var/mail/ (one file per connection),
# so nothing leaves the machine. EMAIL_URL switches to SMTP
# (smtp+tls://user:pass@host:587); EMAIL_BACKEND to any django-anymail ESP,
# configured with ANYMAIL_* variables (ANYMAIL_POSTMARK_SERVER_TOKEN=... becomes
# ANYMAIL["POSTMARK_SERVER_TOKEN"]).
EMAIL_FILE_PATH = VAR_DIR / "mail"
if env.str("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default=EMAIL_BACKEND)
# Seconds an SMTP server may take to answer (Django's default waits forever: a server that stops answering
# after DATA would hold the batch until its time limit).
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=30.0)
# The environment gives text; anymail's timeout and switches are read as what they are ("30" would fail every
# send, "False" would be true).
_ANYMAIL_FLOATS = {"REQUESTS_TIMEOUT"}
_ANYMAIL_BOOLS = {"DEBUG_API_REQUESTS", "IGNORE_UNSUPPORTED_FEATURES", "IGNORE_RECIPIENT_STATUS"}
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): (
        env.float(key) if key.removeprefix("ANYMAIL_") in _ANYMAIL_FLOATS
        else env.bool(key) if key.removeprefix("ANYMAIL_") in _ANYMAIL_BOOLS
        else value
    )
    for key, value in env.ENVIRON.items()
    if key.startswith("ANYMAIL_")
}
# Amazon SES (anymail's boto3 backend): botocore would retry a call whose answer timed out, and so could send an
# email twice. One attempt: the engine marks such an email unknown and retries only what surely was not sent.
ANYMAIL.setdefault("AMAZON_SES_CLIENT_PARAMS", {"config": {"retries": {"total_max_attempts": 1}}})
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="CRM <crm@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery -----------------------------------------------------------------
# Embedded default: the filesystem transport under var/broker, so a newcomer
# needs no Redis. CELERY_BROKER_URL=redis://... or amqp://... for production.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# How often beat ticks. Scheduled work lives in the database; beat only wakes
# the workers up to look at it.
CRM_BEAT_TICK_SECONDS = env.float("CRM_BEAT_TICK_SECONDS", default=60.0)
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {
        "task": "crm.tasks.worker_heartbeat",
        "schedule": CRM_BEAT_TICK_SECONDS,
    },
    "nurture-dispatch": {
        "task": "nurturing.tasks.dispatch_due",
        "schedule": CRM_BEAT_TICK_SECONDS,
    },
    "nurture-reap": {
        "task": "nurturing.tasks.reap_stale",
        "schedule": max(CRM_BEAT_TICK_SECONDS, 60.0),
    },
    "capture-ingest": {
        "task": "capture.tasks.ingest_captures",
        "schedule": env.float("CRM_CAPTURE_INGEST_SECONDS", default=5.0),
    },
    "capture-followups": {
        "task": "capture.tasks.run_followups",
        "schedule": min(CRM_BEAT_TICK_SECONDS, 15.0),
    },
    "nurture-triggers": {
        "task": "nurturing.tasks.run_triggers",
        "schedule": min(CRM_BEAT_TICK_SECONDS, 15.0),
    },
    "scoring-events": {
        "task": "scoring.tasks.score_events",
        "schedule": min(CRM_BEAT_TICK_SECONDS, 15.0),
    },
    "scoring-decay": {
        "task": "scoring.tasks.decay_scores",
        "schedule": crontab(hour=3, minute=17),
    },
    "booking-reminders": {
        "task": "booking.tasks.send_reminders",
        "schedule": CRM_BEAT_TICK_SECONDS,
    },
    "traffic-ingest": {
        "task": "traffic.tasks.ingest_hits",
        "schedule": env.float("CRM_TRACKING_INGEST_SECONDS", default=10.0),
    },
    "traffic-rollup": {
        "task": "traffic.tasks.rollup_traffic",
        "schedule": 15 * 60.0,
    },
    "traffic-housekeeping": {
        "task": "traffic.tasks.housekeeping",
        "schedule": 6 * 3600.0,
    },
    "imports-reap": {
        "task": "imports.reap_stale",  # on the default queue: it must run when the imports worker is dead
        "schedule": 60.0,
    },
    "ratelimit-prune": {
        "task": "core.tasks.prune_rate_counters",
        "schedule": 3600.0,
    },
    # Outbound webhooks: new events become deliveries, then due deliveries are handed out.
    "webhooks-fan-out": {
        "task": "outbound.tasks.fan_out",
        "schedule": env.float("CRM_WEBHOOKS_TICK_SECONDS", default=5.0),
    },
    "webhooks-dispatch": {
        "task": "outbound.tasks.dispatch_due",
        "schedule": env.float("CRM_WEBHOOKS_TICK_SECONDS", default=5.0),
    },
    "webhooks-prune": {
        "task": "outbound.tasks.prune",
        "schedule": 24 * 3600.0,
    },
    "api-idempotency-prune": {
        "task": "api.tasks.prune_idempotency_keys",
        "schedule": 3600.0,
    },
}
# Outbound webhooks have a queue of their own: slow receivers never hold up the other work.
# `make run`'s worker serves it beside the default queue; docker-compose.yml gives it its own worker.
CRM_WEBHOOKS_QUEUE = env.str("CRM_WEBHOOKS_QUEUE", default="webhooks")
# Lead imports too: a 100,000-row file never holds up the emails or the webhooks.
CRM_IMPORTS_QUEUE = env.str("CRM_IMPORTS_QUEUE", default="imports")
# And rescoring every lead after a rule change, and the nightly decay pass: minutes of work at a million leads.
CRM_SCORING_QUEUE = env.str("CRM_SCORING_QUEUE", default="scoring")
CELERY_TASK_ROUTES = {
    "outbound.tasks.*": {"queue": CRM_WEBHOOKS_QUEUE},
    "imports.tasks.*": {"queue": CRM_IMPORTS_QUEUE},
    "scoring.tasks.rescore": {"queue": CRM_SCORING_QUEUE},
    "scoring.tasks.decay_scores": {"queue": CRM_SCORING_QUEUE},
}
# A rescoring task works this long, then hands the rest of the job to a new task.
CRM_SCORING_TASK_SECONDS = env.float("CRM_SCORING_TASK_SECONDS", default=60.0)

# --- Forms ------------------------------------------------------------------
CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- The CRM ----------------------------------------------------------------
CRM_DEFAULT_CURRENCY = env.str("CRM_DEFAULT_CURRENCY", default="EUR")
# The admin counts matching rows exactly up to this many; past it, the count
# is PostgreSQL's estimate, so no page counts a million rows.
CRM_ADMIN_EXACT_COUNT_LIMIT = env.int("CRM_ADMIN_EXACT_COUNT_LIMIT", default=10_000)
# The chance a deal is won, by the stage its lead is in: the weighted forecast multiplies each open deal's
# value by it (reports). "sql=0.2,opportunity=0.4" in the environment.
CRM_STAGE_WIN_PROBABILITY = env.dict("CRM_STAGE_WIN_PROBABILITY", cast={"value": float},
                                     default={"sql": 0.2, "opportunity": 0.4})

# A lead goes cold after this many days without a call, meeting or email (reps' Today page).
CRM_COLD_AFTER_DAYS = env.int("CRM_COLD_AFTER_DAYS", default=14)

# --- Event log ------------------------------------------------------------------
# Readers of the event log (core.events.events_after) see an event only once it is
# this old: a row whose transaction is still committing is not stepped over.
CRM_EVENT_SETTLE_SECONDS = env.float("CRM_EVENT_SETTLE_SECONDS", default=5.0)

# --- Nurturing ------------------------------------------------------------------
# Deliveries claimed per worker task, and at most how many such batches one
# dispatcher tick hands out before it re-queues itself for the rest.
CRM_NURTURE_BATCH_SIZE = env.int("CRM_NURTURE_BATCH_SIZE", default=200)
CRM_NURTURE_MAX_BATCHES_PER_TICK = env.int("CRM_NURTURE_MAX_BATCHES_PER_TICK", default=50)
# A delivery a worker has held this long is either handed back (never started)
# or marked unknown (started, outcome lost): never sent twice.
CRM_NURTURE_STALE_AFTER_SECONDS = env.int("CRM_NURTURE_STALE_AFTER_SECONDS", default=600)
# Emails a worker moves to `sending` (and records) at a time. A worker process killed mid-send leaves at most
# this many `unknown` (never resent, most never tried); a smaller chunk costs more statements per email
# (measured: 20 sends about 12% fewer emails/s than 50).
CRM_NURTURE_SEND_CHUNK = env.int("CRM_NURTURE_SEND_CHUNK", default=50)
# A batch the mail server or provider turned away for a while (down, 4xx, 429, 5xx) is tried again after this
# many seconds, doubled at each retry up to 10 minutes, and never sooner than the provider's Retry-After.
CRM_NURTURE_RETRY_SECONDS = env.float("CRM_NURTURE_RETRY_SECONDS", default=15.0)
CRM_BOOKING_URL = env.str("CRM_BOOKING_URL", default="")
# Booking pages (booking/): how long a booker's reschedule/cancel link and a lead's booking link stay good,
# how many bookings one address may make an hour, and the longest reminder time a page may set.
CRM_BOOKING_LINK_MAX_AGE_DAYS = env.int("CRM_BOOKING_LINK_MAX_AGE_DAYS", default=120)
CRM_BOOKING_PER_ADDRESS_PER_HOUR = env.int("CRM_BOOKING_PER_ADDRESS_PER_HOUR", default=10)
CRM_BOOKING_REMINDER_MAX_MINUTES = 2 * 24 * 60
# Rendering a step's template stops (the delivery fails with the reason, a preview
# shows it) when a part grows past this many characters, or an email takes longer.
CRM_NURTURE_RENDER_MAX_CHARS = env.int("CRM_NURTURE_RENDER_MAX_CHARS", default=256 * 1024)
CRM_NURTURE_RENDER_MAX_SECONDS = env.float("CRM_NURTURE_RENDER_MAX_SECONDS", default=2.0)
# The domain in the Message-ID of every nurture email.
CRM_MESSAGE_ID_DOMAIN = env.str("CRM_MESSAGE_ID_DOMAIN", default="crm.localhost")

# --- Engagement and deliverability --------------------------------------------------
# Where the app is reached from outside: links in emails (unsubscribe) are built on it.
CRM_SITE_URL = env.str("CRM_SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# /metrics (Prometheus) answers only with `Authorization: Bearer <this>`; empty: no metrics (404).
CRM_METRICS_TOKEN = env.str("CRM_METRICS_TOKEN", default="")
# The sender's postal address, in the footer of every nurture email (required of bulk senders).
CRM_POSTAL_ADDRESS = env.str("CRM_POSTAL_ADDRESS", default="")
# The mailto: half of List-Unsubscribe; mail to it unsubscribes (through the inbound webhook).
CRM_UNSUBSCRIBE_MAILTO = env.str("CRM_UNSUBSCRIBE_MAILTO", default=f"unsubscribe@{CRM_MESSAGE_ID_DOMAIN}")
# Suppressions are matched on an HMAC-SHA256 of the address under this key, so an
# address kept only as its hash (erased) cannot be confirmed by guessing.
# Production requires it; local and test settings make one from SECRET_KEY when
# it is empty. To rotate, move the current key into CRM_EMAIL_HASH_KEYS_OLD (still
# matched) and run `manage.py rehash_suppressions`.
CRM_EMAIL_HASH_KEY = env.str("CRM_EMAIL_HASH_KEY", default="")
CRM_EMAIL_HASH_KEYS_OLD = env.list("CRM_EMAIL_HASH_KEYS_OLD", default=[])
# How long an unsubscribe link works.
CRM_UNSUBSCRIBE_LINK_DAYS = env.int("CRM_UNSUBSCRIBE_LINK_DAYS", default=365)
# A click this soon after the email was sent is a security scanner's, not a person's.
CRM_SCANNER_CLICK_SECONDS = env.int("CRM_SCANNER_CLICK_SECONDS", default=10)
# A soft bounce is retried after this many hours; this many soft bounces in 30 days suppress the address.
CRM_SOFT_BOUNCE_RETRY_HOURS = env.int("CRM_SOFT_BOUNCE_RETRY_HOURS", default=6)
CRM_SOFT_BOUNCES_TO_SUPPRESS = env.int("CRM_SOFT_BOUNCES_TO_SUPPRESS", default=3)

# --- Traffic: the tracking snippet on the team's website ------------------------------
CRM_TRACKING_ENABLED = env.bool("CRM_TRACKING_ENABLED", default=True)
# The sites' host names the snippet may report from ("example.com,.example.com": a leading
# dot takes the subdomains too). Empty: any site (fine to try it out; set it in production).
CRM_TRACKING_SITES = [site.strip().lower() for site in env.list("CRM_TRACKING_SITES", default=[]) if site.strip()]
# "none": record page views from the first one; "required": only after the visitor consented
# (the snippet waits for crmTracking.consent(); the no-script pixel records nothing).
CRM_TRACKING_CONSENT = env.str("CRM_TRACKING_CONSENT", default="none")
# Browsers that send Do-Not-Track or Global Privacy Control are not tracked.
CRM_TRACKING_HONOR_DNT = env.bool("CRM_TRACKING_HONOR_DNT", default=True)
# Networks of the team's own offices (CIDR): their page views are marked as the team's.
CRM_TRACKING_TEAM_NETWORKS = env.list("CRM_TRACKING_TEAM_NETWORKS", default=[])
# More hits than this in a minute from one address are a bot's.
CRM_TRACKING_BURST_PER_MINUTE = env.int("CRM_TRACKING_BURST_PER_MINUTE", default=60)
# The queue between the endpoint and the ingest worker: a Redis URL (production: shared
# by every host), or "spool:" (files under var/tracking on this host). Default: Celery's
# broker when that is Redis, else the spool.
CRM_TRACKING_QUEUE_URL = env.str(
    "CRM_TRACKING_QUEUE_URL",
    default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "spool:",
)
# The Redis list's name (two installations can share one Redis).
CRM_TRACKING_QUEUE_KEY = env.str("CRM_TRACKING_QUEUE_KEY", default="crm:tracking:hits")
# A batch a worker took from a Redis queue (hits, captures) and did not finish in this
# many seconds (the worker died) is put back for another worker.
CRM_QUEUE_STALE_SECONDS = env.int("CRM_QUEUE_STALE_SECONDS", default=300)
# The queue holds at most this many hits; past it the endpoint answers 503.
CRM_TRACKING_QUEUE_MAX = env.int("CRM_TRACKING_QUEUE_MAX", default=1_000_000)
# Hits written per drain (one INSERT per 1,000).
CRM_TRACKING_INGEST_BATCH = env.int("CRM_TRACKING_INGEST_BATCH", default=5000)

# --- Rate limits on the public endpoints (core.ratelimit) ------------------------------
# Where attempts are counted: a Redis URL (production: every host counts together),
# or empty for the database (the core_ratecounter table). Default: Celery's broker
# when that is Redis, else the database.
CRM_RATE_LIMIT_URL = env.str(
    "CRM_RATE_LIMIT_URL",
    default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "",
)

# --- Capture: forms ------------------------------------------------------------------
# Checked submissions wait here for the worker that writes them: a Redis URL (every host
# shares it), "spool:" (files under var/capture), or "inline" (written in the request).
# Default: Celery's broker when that is Redis, else the spool.
CRM_CAPTURE_QUEUE_URL = env.str(
    "CRM_CAPTURE_QUEUE_URL",
    default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "spool:",
)
# An optional CAPTCHA on the forms: "turnstile" (Cloudflare) or "recaptcha" (Google); empty: none.
CRM_CAPTCHA_PROVIDER = env.str("CRM_CAPTCHA_PROVIDER", default="")
CRM_CAPTCHA_SITE_KEY = env.str("CRM_CAPTCHA_SITE_KEY", default="")
CRM_CAPTCHA_SECRET = env.str("CRM_CAPTCHA_SECRET", default="")
# The provider's siteverify address (default: the provider's own).
CRM_CAPTCHA_VERIFY_URL = env.str("CRM_CAPTCHA_VERIFY_URL", default="")
CRM_CAPTCHA_TIMEOUT_SECONDS = env.float("CRM_CAPTCHA_TIMEOUT_SECONDS", default=5.0)
# A form sent sooner than this after it was shown is quarantined as a robot's.
# How long a web process keeps a form it has read (capture.selectors.open_form): a change made in the
# admin reaches the other processes within this time.
CRM_CAPTURE_FORM_CACHE_SECONDS = env.float("CRM_CAPTURE_FORM_CACHE_SECONDS", default=5.0)
CRM_CAPTURE_MIN_FILL_SECONDS = env.float("CRM_CAPTURE_MIN_FILL_SECONDS", default=3.0)
# A shown form can be sent for this long (its signed fill-time token expires).
CRM_CAPTURE_TOKEN_MAX_AGE_SECONDS = env.int("CRM_CAPTURE_TOKEN_MAX_AGE_SECONDS", default=86400)
# Submissions allowed per hour from one address, and per form and email address.
CRM_CAPTURE_PER_ADDRESS_PER_HOUR = env.int("CRM_CAPTURE_PER_ADDRESS_PER_HOUR", default=30)
CRM_CAPTURE_PER_EMAIL_PER_HOUR = env.int("CRM_CAPTURE_PER_EMAIL_PER_HOUR", default=5)

# --- Outbound webhooks (outbound/) -------------------------------------------------------
# Webhooks go only to public addresses; True allows private, loopback and link-local ones too
# (a receiver inside your own network). Never on a server that can reach internal services.
CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS = env.bool("CRM_WEBHOOKS_ALLOW_PRIVATE_TARGETS", default=False)
# Seconds to wait for a receiver to connect, and again for its answer.
CRM_WEBHOOKS_TIMEOUT_SECONDS = env.float("CRM_WEBHOOKS_TIMEOUT_SECONDS", default=10.0)
# Seconds between tries after each failure (Standard Webhooks' schedule, about a day); then given up.
CRM_WEBHOOKS_RETRY_SCHEDULE = env.list(
    "CRM_WEBHOOKS_RETRY_SCHEDULE", cast=int, default=[5, 300, 1800, 7200, 18000, 36000, 36000]
)
# An endpoint whose every try has failed for this many hours is paused (and the managers emailed).
CRM_WEBHOOKS_PAUSE_AFTER_HOURS = env.float("CRM_WEBHOOKS_PAUSE_AFTER_HOURS", default=24.0)
# After a secret is rotated, the old one keeps signing (a second signature) for this many hours.
CRM_WEBHOOKS_SECRET_OVERLAP_HOURS = env.float("CRM_WEBHOOKS_SECRET_OVERLAP_HOURS", default=24.0)
# A worker holds the deliveries it claimed this long; if it dies, they are taken again after it.
CRM_WEBHOOKS_LEASE_SECONDS = env.int("CRM_WEBHOOKS_LEASE_SECONDS", default=300)
# Deliveries a sender claims at a time, and how many senders a tick starts at most (each runs
# until nothing is due): as many as the worker processes serving the webhooks queue.
CRM_WEBHOOKS_BATCH_SIZE = env.int("CRM_WEBHOOKS_BATCH_SIZE", default=50)
CRM_WEBHOOKS_SENDERS = env.int("CRM_WEBHOOKS_SENDERS", default=2)
# How much of a receiver's answer the delivery log keeps.
# Finished deliveries (and their tries) are kept this many days in the delivery log, then deleted daily.
CRM_WEBHOOKS_LOG_DAYS = env.int("CRM_WEBHOOKS_LOG_DAYS", default=30)
CRM_WEBHOOKS_RESPONSE_EXCERPT_BYTES = env.int("CRM_WEBHOOKS_RESPONSE_EXCERPT_BYTES", default=1024)

# --- Lead imports (imports/) -------------------------------------------------------------
# Where uploaded files and the files of rejected rows are kept.
CRM_IMPORTS_DIR = Path(env.str("CRM_IMPORTS_DIR", default=str(VAR_DIR / "imports")))
# The largest file taken, in bytes.
CRM_IMPORT_MAX_BYTES = env.int("CRM_IMPORT_MAX_BYTES", default=100 * 1024 * 1024)
# The longest cell, in characters: a longer one is that row's error, not the file's.
CRM_IMPORT_MAX_CELL_CHARS = env.int("CRM_IMPORT_MAX_CELL_CHARS", default=10_000)
# Rows written per transaction: a failure undoes only its own chunk.
CRM_IMPORT_CHUNK_ROWS = env.int("CRM_IMPORT_CHUNK_ROWS", default=1000)
# A dry run or run whose worker has not reported progress for this long stopped (the worker died): it is marked
# so (a run as failed, resumable after its last written row) by the imports-reap beat entry.
CRM_IMPORT_STALE_MINUTES = env.int("CRM_IMPORT_STALE_MINUTES", default=10)

# --- Exports (leads/exports.py) ----------------------------------------------------------
# The longest list exported at once: rows are streamed (memory stays flat), but a longer
# list is better narrowed by its filters. An XLSX sheet holds 1,048,575 rows whatever this says.
CRM_EXPORT_MAX_ROWS = env.int("CRM_EXPORT_MAX_ROWS", default=1_000_000)

# The cache: bursts from one address are counted here. Redis in production
# (CACHE_URL=redis://...), so every worker counts together.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}


# --- The REST API (/api/v1/, the api app) --------------------------------------------
# Personal API tokens (Authorization: Bearer crm_...), JSON only, errors as RFC 9457
# problem details. Everything else about it is in api/ and the README's API section.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.TokenScopes"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.PerTokenRateThrottle"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "api.negotiation.JsonOnly",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.problems.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_VERSIONING_CLASS": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lead nurturing CRM API",
    "DESCRIPTION": (
        "Leads, companies, customers, deals, calls, notes, meetings, objections, tasks, sequences and "
        "enrollments, form submissions, conversions, campaigns and spend, and the event log, over the same "
        "services and permission policy as the pages. "
        "Authenticate with a personal API token: `Authorization: Bearer crm_...` (create one on the API tokens "
        "page). Errors are RFC 9457 problem details (`application/problem+json`)."
    ),
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"LeadStatusEnum": "leads.pipeline.LeadStatus"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.forbid_unknown_request_fields",
    ],
    # Swagger UI from the app's static files (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": False, "displayOperationId": False},
}
# Requests per token per minute; past it, 429 with Retry-After (counted by core.ratelimit).
CRM_API_RATE_LIMIT_PER_MINUTE = env.int("CRM_API_RATE_LIMIT_PER_MINUTE", default=600)
# Rows per page of a list: the default, and the most a client may ask for (more is capped).
CRM_API_PAGE_SIZE = env.int("CRM_API_PAGE_SIZE", default=25)
CRM_API_MAX_PAGE_SIZE = env.int("CRM_API_MAX_PAGE_SIZE", default=100)
# A token lives at most this many days (its owner picks up to this when creating it).
CRM_API_TOKEN_MAX_DAYS = env.int("CRM_API_TOKEN_MAX_DAYS", default=365)
# How long an Idempotency-Key is remembered (its first response replayed).
CRM_API_IDEMPOTENCY_HOURS = env.int("CRM_API_IDEMPOTENCY_HOURS", default=24)

# --- Notifications --------------------------------------------------------------
# A person's click in an email tells the lead's owner when the link's address contains one of these words.
CRM_NOTIFY_CLICK_WORDS = env.list("CRM_NOTIFY_CLICK_WORDS", default=["pricing"])
# An open deal with no change for this many days is stalled: its lead's owner is told, once per stall.
CRM_DEAL_STALLED_DAYS = env.int("CRM_DEAL_STALLED_DAYS", default=14)
# A task's assignee is told this many minutes before it is due.
CRM_TASK_DUE_SOON_MINUTES = env.int("CRM_TASK_DUE_SOON_MINUTES", default=15)
# The daily email digest of unread notifications goes out at this hour (TIME_ZONE) to those who asked for it.
CRM_NOTIFY_DIGEST_HOUR = env.int("CRM_NOTIFY_DIGEST_HOUR", default=7)
CELERY_BEAT_SCHEDULE |= {
    "notifications-events": {
        "task": "notifications.tasks.notify_from_events",
        "schedule": min(CRM_BEAT_TICK_SECONDS, 15.0),
    },
    "notifications-due": {
        "task": "notifications.tasks.check_due",
        "schedule": 60.0,
    },
    "notifications-digest": {
        "task": "notifications.tasks.send_digests",
        "schedule": crontab(hour=CRM_NOTIFY_DIGEST_HOUR, minute=0),
    },
}
