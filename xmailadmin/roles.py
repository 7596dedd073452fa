"""The two roles as Django groups: Administrator (everything) and Support (read, run tests).

The groups are (re)created after every migrate and flush (post_migrate), so
a fresh database always has them.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from .models import ADMIN_GROUP, SUPPORT_GROUP

ROLE_PERMISSIONS = {
    ADMIN_GROUP: ("view_panel", "run_checks", "change_settings"),
    SUPPORT_GROUP: ("view_panel", "run_checks"),
}
ROLE_NAMES = {"admin": ADMIN_GROUP, "support": SUPPORT_GROUP}


def ensure_groups(**kwargs) -> None:
    for name, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        perms = Permission.objects.filter(
            content_type__app_label="xmailadmin", codename__in=codenames
        )
        group.permissions.add(*perms)
