"""The checks of an account's values, on the model so that no way in can skip them.

The panel's form, /admin/, a management command and plain ORM code all end in
``Account.save()``, which runs these. They say in the user's language what
``transports.base`` would refuse anyway when a value reaches a mail command
(``Target`` checks again at send time: rows changed behind the model's back,
by ``QuerySet.update`` or SQL, are caught there).
"""

from __future__ import annotations

import ipaddress
import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from transports.base import (
    SHELL_CHARS,
    TargetError,
    ca_file_problem,
    check_address,
    check_ca_file,
    normalise_host,
)


def reject_control_chars(value: str) -> None:
    for char in value:
        if char in "\r\n":
            raise ValidationError(_("Line breaks (CR/LF) are not allowed."), code="line_break")
        # Cf: zero-width and bidi marks that make one name look like another.
        if unicodedata.category(char) in ("Cc", "Cf"):
            raise ValidationError(_("Control characters are not allowed."), code="control")


def reject_shell_chars(value: str) -> None:
    reject_control_chars(value)
    for char in value:
        if char in SHELL_CHARS:
            raise ValidationError(
                _("The character “%(char)s” is not allowed here (shell special character)."),
                code="shell",
                params={"char": char},
            )


def validate_host(value: str) -> None:
    reject_control_chars(value)
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    reject_shell_chars(bare)
    try:
        normalise_host(bare)
    except TargetError:
        raise ValidationError(
            _("“%(value)s” is neither a valid host name nor an IP address."),
            code="host",
            params={"value": value},
        ) from None


def validate_username(value: str) -> None:
    reject_shell_chars(value)
    if any(c.isspace() for c in value):
        raise ValidationError(_("Spaces are not allowed in the user name."), code="space")


def validate_address(value: str) -> None:
    reject_control_chars(value)
    try:
        validate_email(value)
        local, _at, domain = value.rpartition("@")
        check_address(f"{local}@{normalise_host(domain)}")
    except (ValidationError, TargetError):
        raise ValidationError(
            _("Not a valid mail address: “%(value)s”."), code="address", params={"value": value}
        ) from None


def validate_ca_file(value: str) -> None:
    """A readable file holding PEM certificates and no private key. The same sentence
    whether the path is missing, unreadable or another file, so the field cannot be
    used to find out which files exist."""
    if not value:
        return
    reject_shell_chars(value)
    try:
        check_ca_file(value)
    except TargetError:
        raise ValidationError(
            _("Please give an absolute path (starting with /)."), code="relative"
        ) from None
    if ca_file_problem(value):
        raise ValidationError(
            _("The file %(path)s holds no usable certificate (PEM, without a private key)."),
            code="ca_file",
            params={"path": value},
        )


def validate_tls_name(value: str) -> None:
    if not value:
        return
    reject_shell_chars(value)
    try:
        name = normalise_host(value)
    except TargetError:
        raise ValidationError(
            _("“%(value)s” is not a valid host name."), code="host", params={"value": value}
        ) from None
    try:
        ipaddress.ip_address(name)
    except ValueError:  # a name, as it should be
        return
    raise ValidationError(
        _("Please give the host name in the certificate (not an IP address)."), code="tls_name"
    )
