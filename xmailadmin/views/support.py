"""The support page: this server's bundle to download (JSON or printable HTML), and
customers' bundles uploaded to be read here, with the pages of live data."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from .. import bundle, bundle_read
from ..models import PERM_VIEW, AuditEntry, SupportBundle
from .common import current_server, panel_view

CONTENT_TYPES = {"json": "application/json; charset=utf-8", "html": "text/html; charset=utf-8"}


@require_GET
@panel_view(PERM_VIEW)
def support(request: HttpRequest) -> HttpResponse:
    return _page(request)


def _page(
    request: HttpRequest, error: str = "", status: int = 200, confirm: SupportBundle | None = None
) -> HttpResponse:
    context = {
        "uploaded": SupportBundle.objects.select_related("uploaded_by").defer("data")[:50],
        "confirm_delete": confirm,
        "error": error,
        "max_mb": f"{settings.XMAILADMIN_BUNDLE_MAX_BYTES / 1e6:.0f}",
    }
    return render(request, "panel/support.html", context, status=status)


@require_GET
@panel_view(PERM_VIEW)
def bundle_download(request: HttpRequest, fmt: str) -> HttpResponse:
    if fmt not in CONTENT_TYPES:
        raise Http404
    data = bundle.collect(current_server(request))
    text = export(data, fmt)
    AuditEntry.record(request.user, AuditEntry.Action.BUNDLE_MADE, target=data["server"],
                      detail=fmt)  # fmt: skip
    response = HttpResponse(text, content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{file_name(data, fmt)}"'
    return response


def export(data: dict, fmt: str) -> str:
    """The bundle as JSON, or as the printable page of the same content; either is
    checked for every secret before it leaves (bundle.SecretLeft)."""
    secrets = bundle.secrets_of_panel()
    if fmt == "json":
        return bundle.dumps(data, secrets)
    context = {**bundle_read.page_context(data), "base": "panel/bundle_print.html", "css": _css()}
    html = render_to_string("panel/bundle.html", context)
    bundle.check_clean(html, secrets)
    return html


def file_name(data: dict, fmt: str) -> str:
    server = "".join(c if c.isalnum() or c in "-_." else "_" for c in data["server"])
    stamp = data["created_at"][:16].replace(":", "").replace("-", "")
    return f"xmailadmin-bundle-{server}-{stamp}.{fmt}"


def _css() -> str:
    # The page is read offline (a mail attachment, a ticket): its style comes inside it.
    path = finders.find("css/panel.css")
    with open(path, encoding="utf-8") as fh:
        return fh.read()


@require_POST
@panel_view(PERM_VIEW)
def bundle_upload(request: HttpRequest) -> HttpResponse:
    upload = request.FILES.get("bundle")
    if upload is None:
        return _page(request, _("Choose a bundle file (.json) first."), status=400)
    try:
        bundle_read.check_size(upload.size)  # before reading a byte of it
        raw = upload.read()
        data = bundle_read.load(raw)
    except bundle_read.BundleRefused as exc:
        return _page(request, str(exc), status=400)
    row = SupportBundle.objects.create(
        uploaded_by=request.user,
        filename=upload.name[:255],
        size=len(raw),
        server=data["server"][:255],
        created_at=bundle_read.when(data["created_at"]),
        schema=data["schema"],
        data=data,
    )
    AuditEntry.record(request.user, AuditEntry.Action.BUNDLE_UPLOADED, target=row.server,
                      detail=row.filename)  # fmt: skip
    return redirect("bundle-view", bundle_id=row.pk)


@require_GET
@panel_view(PERM_VIEW)
def bundle_view(request: HttpRequest, bundle_id: int) -> HttpResponse:
    row = get_object_or_404(SupportBundle, pk=bundle_id)
    context = {**bundle_read.page_context(row.data), "uploaded": row, "base": "base.html"}
    return render(request, "panel/bundle.html", context)


@require_POST
@panel_view(PERM_VIEW)
def bundle_delete(request: HttpRequest, bundle_id: int) -> HttpResponse:
    """A customer's bundle removed once support is done with it (it names their hosts and
    users): asked on the page first, then deleted and audited."""
    row = get_object_or_404(SupportBundle.objects.defer("data"), pk=bundle_id)
    if request.POST.get("confirm") != "1":
        return _page(request, confirm=row)
    name = f"{row.server} ({row.filename})"
    row.delete()
    AuditEntry.record(request.user, AuditEntry.Action.BUNDLE_DELETED, target=name[:255])
    messages.success(request, _("The bundle of %(name)s was deleted.") % {"name": name})
    return redirect("support")
