"""Reads for the public endpoints.

`capture_form_get` answers every hit on a form's endpoints, so it keeps the forms it
has read in the process for CRM_CAPTURE_FORM_CACHE_SECONDS: a busy form then
costs no database query per submission. A form saved or deleted in this process
(the admin, a service, a test) is read again at once; other processes see the
change within the cache time. The submission itself is written from the
database's copy of the form (capture.services.capture_item), never this one.
"""

import threading
import time

from django.conf import settings

from .models import CaptureForm

_forms: dict[str, tuple[float, CaptureForm | None]] = {}
_lock = threading.Lock()


def capture_form_get(slug: str) -> CaptureForm | None:
    """The active form with this slug (with its conversion kind and resource), or None. Treat it as read-only."""
    seconds = settings.CRM_CAPTURE_FORM_CACHE_SECONDS
    now = time.monotonic()
    cached = _forms.get(slug)
    if cached is not None and now < cached[0]:
        return cached[1]
    form = CaptureForm.objects.select_related("conversion_kind", "resource").filter(slug=slug).first()
    if form is not None and not form.is_active:
        form = None
    if seconds > 0:
        with _lock:
            if len(_forms) >= 1000:  # slugs that were never forms cannot grow it without end
                _forms.clear()
            _forms[slug] = (now + seconds, form)
    return form


def forget_forms(**kwargs) -> None:
    """Read every form again on its next hit (connected to the saves and deletes of forms and what they show)."""
    with _lock:
        _forms.clear()
