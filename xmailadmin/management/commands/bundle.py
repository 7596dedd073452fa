"""The support bundle without a browser, e.g. over SSH for a support ticket.

    manage.py bundle --out FILE [--format json|html] [--language de|en]

``--out -`` writes to standard output. The file holds no secret (bundle.py); it is
written with mode 0600 all the same, as it names hosts and users.
"""

from __future__ import annotations

import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from xmailadmin import bundle
from xmailadmin.models import AuditEntry
from xmailadmin.views.support import export


class Command(BaseCommand):
    help = "Write this server's support bundle (JSON or printable HTML), without secrets."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--out", required=True, help="the file to write, or - for stdout")
        parser.add_argument("--format", choices=("json", "html"), default="json")
        parser.add_argument(
            "--language", choices=[code for code, _name in settings.LANGUAGES],
            default=settings.LANGUAGE_CODE, help="of the HTML page (JSON keeps sentences as data)",
        )  # fmt: skip

    def handle(self, *args, out: str, format: str, language: str, **options) -> None:
        with translation.override(language):
            data = bundle.collect()
            try:
                text = export(data, format)
            except bundle.SecretLeft as exc:
                raise CommandError(str(exc)) from exc
        if out == "-":
            sys.stdout.write(text)
        else:
            try:
                fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
            except OSError as exc:
                raise CommandError(f"cannot write {out}: {exc.strerror}") from exc
            self.stderr.write(f"wrote {out} ({len(text.encode()):,} bytes, {format})")
        AuditEntry.record(None, AuditEntry.Action.BUNDLE_MADE, target=data["server"],
                          detail=f"{format}, manage.py bundle")  # fmt: skip
