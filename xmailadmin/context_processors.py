"""Template context processors, named in settings.TEMPLATES."""

from __future__ import annotations

from django.http import HttpRequest

from .models import PERM_CHANGE, PERM_RUN


def roles(request: HttpRequest) -> dict[str, bool]:
    """What the user may do, for showing or hiding buttons."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"can_run": False, "can_change": False}
    return {"can_run": user.has_perm(PERM_RUN), "can_change": user.has_perm(PERM_CHANGE)}
