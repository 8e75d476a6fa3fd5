"""The import pages, for managers and marketers: upload, preview and mapping, dry run, run with its progress,
the rejected rows. Views parse input, call one service and render; the run goes to a Celery task."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.policy import may_import_leads

from . import reading, services
from .forms import SetupForm, UploadForm
from .models import LeadImport
from .tasks import check_import, run_import


def importer_view(view):
    @wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        if not may_import_leads(request.user):
            raise PermissionDenied("Only a manager or a marketer can import leads.")
        return view(request, *args, **kwargs)

    return wrapped


def _errors(form, exc: ValidationError):
    if hasattr(exc, "error_dict"):
        for name, errors in exc.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc)


@importer_view
def import_list(request):
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = services.lead_import_upload(file=upload, name=upload.name, by=request.user,
                                              encoding=form.cleaned_data["encoding"], separator=form.cleaned_data["separator"],
                                              target=form.cleaned_data["target"] or LeadImport.Target.LEADS)
        except ValidationError as exc:
            _errors(form, exc)
        else:
            return redirect("imports:detail", pk=job.pk)
    jobs = LeadImport.objects.select_related("created_by")[:20]
    return render(request, "imports/import_list.html", {"form": form, "jobs": jobs, "nav": "imports"})


@importer_view
def import_detail(request, pk: int):
    job = get_object_or_404(LeadImport, pk=pk)
    context = {"job": job, "nav": "imports"}
    if job.status in (LeadImport.Status.UPLOADED, LeadImport.Status.CHECKED):
        mapping = None
        if request.method == "POST":
            mapping = {column: request.POST.get(f"col_{i}", "") for i, column in enumerate(_columns(job))}
        preview = services.lead_import_preview(job=job, mapping=mapping)
        form = SetupForm(request.POST or None, columns=preview.columns, job=job, mapping=preview.mapping,
                         date_formats=preview.date_formats, stages=preview.stages, stage_mapping=preview.stage_mapping)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            deals = job.target == LeadImport.Target.DEALS
            try:
                services.lead_import_configure(
                    job=job, by=request.user, mapping=form.mapping(), dedupe_key=data.get("dedupe_key") or None,
                    on_duplicate=data.get("on_duplicate") or None, date_format=data["date_format"],
                    encoding=data.get("encoding") or None, separator=data.get("separator") or None,
                    stage_mapping=form.stage_mapping() if deals else None,
                    unknown_owner=data.get("unknown_owner") or None, currency=data.get("currency") if deals else None,
                )
                services.lead_import_queue_check(job=job, by=request.user)
            except ValidationError as exc:
                _errors(form, exc)
            else:
                check_import.delay(job.pk)
                return redirect("imports:detail", pk=job.pk)
        context.update(preview=preview, form=form, separator_name=reading.SEPARATORS.get(job.separator, ""),
                       date_format_label=reading.DATE_FORMATS.get(job.date_format, ""))
    return render(request, "imports/import_detail.html", context)


def _columns(job):
    return services.lead_import_preview(job=job, rows=0).columns


@require_POST
@importer_view
def import_run(request, pk: int):
    job = get_object_or_404(LeadImport, pk=pk)
    if job.status != LeadImport.Status.CHECKED:
        messages.error(request, "Check the import (the dry run) before running it.")
        return redirect("imports:detail", pk=job.pk)
    try:
        services.lead_import_queue(job=job, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        run_import.delay(job.pk)
    return redirect("imports:detail", pk=job.pk)


@require_POST
@importer_view
def import_resume(request, pk: int):
    job = get_object_or_404(LeadImport, pk=pk)
    try:
        services.lead_import_resume(job=job, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        run_import.delay(job.pk)
    return redirect("imports:detail", pk=job.pk)


@require_GET
@importer_view
def import_progress(request, pk: int):
    job = get_object_or_404(LeadImport, pk=pk)
    response = render(request, "imports/partials/progress.html", {"job": job})
    if job.status in (LeadImport.Status.CHECKED, LeadImport.Status.UPLOADED) and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"  # the dry run ended: the page shows its report (or the set-up again)
    return response


@require_GET
@importer_view
def import_rejected(request, pk: int):
    job = get_object_or_404(LeadImport, pk=pk)
    if not job.rejected_file:
        raise Http404("This import has no rejected rows.")
    return FileResponse(job.rejected_file.open("rb"), as_attachment=True, filename=f"import-{job.pk}-rejected.csv",
                        content_type="text/csv")
