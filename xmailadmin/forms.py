"""Forms: everything a user types is checked here before it is stored.

Nothing typed here ever reaches a shell (transports run argument lists), but
values do reach command lines and config files of mail tools: line breaks,
control characters and shell metacharacters are refused in every field but
the password, which may contain any printable character.
"""

from __future__ import annotations

import ipaddress
import os
import unicodedata
from pathlib import Path

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from transports.base import TargetError, check_address, normalise_host
from transports.catalogue import CATALOGUE

from .models import Account, Mode, State

SHELL_CHARS = frozenset(";|&$`<>\\\"'(){}[]*?!~#")
PASSWORD_MAX = 256


def reject_control_chars(value: str) -> None:
    for char in value:
        if char in "\r\n":
            raise ValidationError(
                _("Line breaks (CR/LF) are not allowed."), code="line_break"
            )
        if unicodedata.category(char) == "Cc":
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


def clean_address(value: str) -> str:
    value = value.strip()
    reject_shell_chars(value)
    try:
        validate_email(value)
        local, _at, domain = value.rpartition("@")
        address = f"{local}@{normalise_host(domain)}"
        check_address(address)
    except (ValidationError, TargetError):
        raise ValidationError(
            _("Not a valid mail address: “%(value)s”."),
            code="address",
            params={"value": value},
        ) from None
    return value


class AccountForm(forms.ModelForm):
    password = forms.CharField(
        label=_("Password"),
        required=False,
        max_length=PASSWORD_MAX,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    port = forms.IntegerField(
        label=_("Port"),
        min_value=1,
        max_value=65535,
        error_messages={
            "min_value": _("The port must be between 1 and 65535."),
            "max_value": _("The port must be between 1 and 65535."),
            "invalid": _("The port must be a number between 1 and 65535."),
        },
        help_text=_("465 = SMTPS (implicit TLS), every other port STARTTLS."),
    )

    class Meta:
        model = Account
        fields = [
            "name",
            "host",
            "port",
            "mode",
            "username",
            "password",
            "sender",
            "recipient",
            "ca_file",
            "tls_name",
            "verify",
            "is_default",
        ]
        help_texts = {
            "ca_file": _("Optional: path to a CA file (PEM) on this server."),
            "tls_name": _(
                "Only for postfix and exim as relays, when the server is given as an IP "
                "address: the host name in its certificate, so that it can be checked."
            ),
            "verify": _("Switch off only to narrow down a problem."),
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["mode"].choices = [("", _("automatic by port")), *Mode.choices]
        if self.instance.pk and self.instance.has_password:
            self.fields["password"].help_text = _(
                "A password is stored. Leave empty to keep it."
            )
        else:
            self.fields["password"].help_text = _("Stored encrypted.")

    def clean_name(self) -> str:
        value = self.cleaned_data["name"].strip()
        reject_shell_chars(value)
        return value

    def clean_host(self) -> str:
        value = self.cleaned_data["host"].strip()
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
        return bare.rstrip(".")

    def clean_username(self) -> str:
        value = self.cleaned_data["username"].strip()
        reject_shell_chars(value)
        if any(c.isspace() for c in value):
            raise ValidationError(_("Spaces are not allowed in the user name."))
        return value

    def clean_password(self) -> str:
        value = self.cleaned_data.get("password") or ""
        reject_control_chars(value)
        if not value and not (self.instance.pk and self.instance.has_password):
            raise ValidationError(_("Please enter a password."), code="required")
        return value

    def clean_sender(self) -> str:
        return clean_address(self.cleaned_data["sender"])

    def clean_recipient(self) -> str:
        return clean_address(self.cleaned_data["recipient"])

    def clean_ca_file(self) -> str:
        value = self.cleaned_data.get("ca_file", "").strip()
        if not value:
            return ""
        reject_shell_chars(value)
        path = Path(value)
        if not path.is_absolute():
            raise ValidationError(_("Please give an absolute path (starting with /)."))
        if not path.is_file() or not os.access(path, os.R_OK):
            raise ValidationError(
                _("The file %(path)s does not exist or is not readable."),
                params={"path": value},
            )
        return value

    def clean_tls_name(self) -> str:
        value = self.cleaned_data.get("tls_name", "").strip()
        if not value:
            return ""
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
            return value.rstrip(".")
        raise ValidationError(
            _("Please give the host name in the certificate (not an IP address)."),
            code="tls_name",
        )

    def save(self, commit: bool = True) -> Account:
        account = super().save(commit=False)
        password = self.cleaned_data.get("password")
        if password:
            account.set_password(password)
        if commit:
            first = not Account.objects.exclude(pk=account.pk).exists()
            if account.is_default or first:
                account.is_default = False
                account.save()
                account.make_default()
            else:
                account.save()
        return account

    def changed_fields(self) -> list[str]:
        """Names of changed fields for the audit log; the password only as a name."""
        names = [n for n in self.changed_data if n != "password"]
        if self.cleaned_data.get("password"):
            names.append("password")
        return names


class HistoryFilterForm(forms.Form):
    command = forms.ChoiceField(label=_("Command"), required=False)
    result = forms.ChoiceField(label=_("Result"), required=False)
    account = forms.ModelChoiceField(
        label=_("Account"), required=False, queryset=Account.objects.all(),
        empty_label=_("all accounts"),
    )
    since = forms.DateField(
        label=_("from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs) -> None:
        from .models import label

        super().__init__(*args, **kwargs)
        self.fields["command"].choices = [("", _("all commands"))] + [
            (e.key, label(e)) for e in CATALOGUE
        ]
        self.fields["result"].choices = [("", _("all results")), *State.choices]
