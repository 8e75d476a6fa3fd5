"""Development on a laptop: the embedded default, debug on."""

from .base import *  # noqa: F403
from .base import env
from .keys import LOCAL_SECRET_KEY

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# A fixed, clearly unsafe key is fine here: production.py refuses it.
SECRET_KEY = SECRET_KEY or LOCAL_SECRET_KEY  # noqa: F405
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
# Serve static files straight from the apps (no collectstatic needed).
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
