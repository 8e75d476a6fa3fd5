"""An audience's count and sample while a marketer edits its rules, before saving: the audience's admin page posts
its form as it changes (nurturing/static/nurturing/audience_live.js) and this answers with the leads those rules
hold now. The rules are checked as saving would check them (the admin's form, the model's clean); nothing is
saved. Without JavaScript the page shows the saved audience's count, as before."""

from django.http import JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from core.policy import access_for

from .audiences import audience_count_and_sample

# A name is not a rule: an audience being made has none yet.
UNSAVED_NAME = "Unsaved audience"


class AudienceLiveCountMixin:
    class Media:
        js = ("nurturing/audience_live.js",)

    def live_count_url(self) -> str:
        return reverse("admin:nurturing_audience_live_count")

    def live_count_box(self, saved_html):
        """The saved count (or a note to save), and the box the script fills with the count for the rules as edited."""
        return format_html(
            '<div id="audience-members" data-live-url="{}">{}'
            '<div id="audience-live" class="help" aria-live="polite"></div></div>', self.live_count_url(), saved_html)

    def get_urls(self):
        # Not the admin's own wrapper, which sends who may not use the admin to its login page: a script asking
        # gets a 403 it can show. CSRF is checked as on every admin form.
        view = never_cache(csrf_protect(require_POST(self.live_count_view)))
        return [path("live-count/", view, name="nurturing_audience_live_count"), *super().get_urls()]

    def live_count_view(self, request):
        """POST the audience form's fields: 200 {count, sample: [{name, email, stage}]}; 400 {errors: {field:
        [message]}} for rules that would not save; 403 for who may not build audiences."""
        if not (request.user.is_authenticated and request.user.is_staff and access_for(request.user).builds_sequences):
            return JsonResponse({"errors": {"__all__": ["Only a marketer or a manager can build audiences."]}},
                                status=403)
        data = request.POST.copy()
        if not data.get("name", "").strip():
            data["name"] = UNSAVED_NAME
        form = self.get_form(request, None)(data=data)
        if not form.is_valid():
            return JsonResponse({"errors": {field: list(messages) for field, messages in form.errors.items()}},
                                status=400)
        count, sample = audience_count_and_sample(form.instance)
        return JsonResponse({"count": count, "sample": [
            {"name": str(lead), "email": lead.email, "stage": lead.get_status_display()} for lead in sample]})
