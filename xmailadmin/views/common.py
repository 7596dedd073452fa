"""What every page's views share: the login and role rule, the notice, polling."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling, retarget

from .. import jobs
from ..models import Account, Job, Server, local_server_name

View = Callable[..., HttpResponse]


def panel_view(perm: str) -> Callable[[View], View]:
    """Login required (HTMX requests are sent to the login page too), then ``perm``."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                if request.htmx:
                    return HttpResponseClientRedirect(reverse("login"))
                return redirect_to_login(request.get_full_path())
            if not request.user.has_perm(perm):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def notice(request: HttpRequest, text: str, back: str = "dashboard") -> HttpResponse:
    """An error in the page's notice area (HTMX), or as a message on the page ``back``."""
    if request.htmx:
        response = render(request, "panel/_notice.html", {"text": text, "level": "error"})
        return retarget(response, "#notice")
    messages.error(request, text)
    return redirect(back)


# How soon a block asks again about a running row: (age in seconds below which, delay).
# Most sends end within a second: polled often then, a result shows within 0.25 s of
# it even with a few polls queued at the web server; a row that takes longer is asked
# less and less often (each block names its next delay, hx-trigger="every ...", so the
# server decides and nothing else does).
POLL_STEPS = ((1.0, "100ms"), (3.0, "200ms"), (10.0, "500ms"))
POLL_SLOWEST = "1s"


def poll_every(row: Job | None) -> str:
    """The delay before the next poll of ``row`` ("" when it is final: no polling)."""
    if row is None or not row.active:
        return ""
    age = _age(row)
    return next((delay for below, delay in POLL_STEPS if age < below), POLL_SLOWEST)


def _age(row: Job) -> float:
    since = min(t for t in (row.created_at, row.started_at) if t is not None)
    return (timezone.now() - since).total_seconds()


def polled(request: HttpRequest, template: str, context: dict, row: Job | None) -> HttpResponse:
    """A block polled while ``row`` runs (``poll_every``); 286 stops the polling once it
    is final.

    ``row`` is the object ``context`` shows (no row yet counts as final). While it
    runs, rows no worker will finish are failed first, and ``row`` is reloaded in
    place if anything was, so the block shows the outcome. A row younger than three
    heartbeats cannot be stale yet: its polls (several a second) skip those queries.
    """
    may_be_stale = row is not None and row.active and _age(row) >= jobs.stale_after_seconds()
    if may_be_stale and jobs.expire_stale(row.server):
        row.refresh_from_db()
    response = render(request, template, context)
    if row is None or not row.active:
        response.status_code = HttpResponseStopPolling.status_code
    return response


SERVER_KEY = "xmailadmin_server"


def current_server(request: HttpRequest) -> Server:
    """The server the pages show and send jobs to: chosen on the servers page
    (``?server=ID``, kept in the session), else this machine."""
    raw = request.GET.get("server") or request.session.get(SERVER_KEY)
    if raw:
        try:
            server = Server.objects.filter(pk=int(raw)).first()
        except (TypeError, ValueError):
            server = None
        if server is not None and server.name != local_server_name():
            if request.GET.get("server"):
                request.session[SERVER_KEY] = server.pk
            return server
        request.session.pop(SERVER_KEY, None)  # this machine is the default: nothing kept
    return Server.local()


def chosen_server(request: HttpRequest) -> Server | None:
    """Another server chosen for the pages, else None (this machine) without a query: the
    overview's hot path (pagecache) needs the server only when one was chosen."""
    if request.GET.get("server") or request.session.get(SERVER_KEY):
        server = current_server(request)
        return None if server.name == local_server_name() else server
    return None


def selected_account(request: HttpRequest, account_id: int | None = None) -> Account | None:
    """The account in the URL (``?account=``), else the default one; of those the shown
    server uses."""
    server = current_server(request)
    raw = account_id or request.GET.get("account")
    if raw:
        try:
            return Account.on(server).filter(pk=int(raw)).first() or Account.default(server)
        except ValueError:
            pass
    return Account.default(server)
