"""Forms: what a user types is normalised here; the model's validators check it.

The checks live on ``Account`` (``validators.py``) so that /admin/, management
commands and ORM code cannot skip them; a form only trims and normalises.
"""

from __future__ import annotations

import secrets

from cryptography.fernet import InvalidToken
from django import forms
from django.contrib.sessions.backends.base import SessionBase
from django.core import signing
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from transports.base import Mode
from transports.catalogue import CATALOGUE

from .crypto import encrypt, fernet
from .models import MODE_CHOICES, Account, State
from .texts import say
from .validators import (
    reject_control_chars,
    validate_address,
    validate_ca_file,
    validate_host,
    validate_username,
)

PASSWORD_MAX = 256
# The hidden fields of the account form: neither holds the password or a secret.
KEPT_FIELD = "password_kept"  # the ticket of a password kept after a form error
DETECTION_FIELD = "detection"  # the signed outcome of "Detect the mode"
DETECTION_SALT = "xmailadmin.mode-detection"
DETECTION_MAX_AGE = 3600


def port_field(**extra) -> forms.IntegerField:
    return forms.IntegerField(
        label=_("Port"),
        min_value=1,
        max_value=65535,
        error_messages={
            "min_value": _("The port must be between 1 and 65535."),
            "max_value": _("The port must be between 1 and 65535."),
            "invalid": _("The port must be a number between 1 and 65535."),
            **extra.pop("error_messages", {}),
        },
        **extra,
    )


def bare_host(value: str) -> str:
    """A host as typed, without blanks, the brackets of an IPv6 address and a final dot."""
    value = value.strip()
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    return bare.rstrip(".")


class KeptPasswords:
    """A password typed into an account form that failed on another field, kept for the
    next try so it need not be typed again: Fernet-encrypted in the session (which the
    database holds), under a random ticket the form carries. The page never shows it."""

    SESSION_KEY = "xmailadmin_kept_passwords"
    MAX_AGE = 900  # seconds
    MAX_KEPT = 5  # tickets per session (several tabs), the oldest dropped first

    def __init__(self, session: SessionBase) -> None:
        self.session = session

    def _kept(self) -> dict[str, str]:
        return dict(self.session.get(self.SESSION_KEY, {}))

    def get(self, ticket: str) -> str:
        token = self._kept().get(ticket) if ticket else None
        if token is None:
            return ""
        try:
            return fernet().decrypt(token.encode("ascii"), ttl=self.MAX_AGE).decode()
        except InvalidToken:  # too old, or from before a key rotation: type it again
            self.drop(ticket)
            return ""

    def keep(self, raw: str, ticket: str = "") -> str:
        kept = self._kept()
        kept.pop(ticket, None)
        ticket = secrets.token_urlsafe(18)
        kept[ticket] = encrypt(raw)
        self.session[self.SESSION_KEY] = dict(list(kept.items())[-self.MAX_KEPT :])
        return ticket

    def drop(self, ticket: str) -> None:
        kept = self._kept()
        if kept.pop(ticket, None) is not None:
            self.session[self.SESSION_KEY] = kept


def detection_ticket(host: str, port: int, mode: Mode) -> str:
    """The outcome of "Detect the mode", signed so that a saved form cannot claim another."""
    return signing.dumps({"host": host, "port": port, "mode": mode.value}, salt=DETECTION_SALT)


def read_detection(ticket: str, host: str, port: int) -> Mode | None:
    """The mode in ``ticket`` if it was detected for ``host`` and ``port`` within the hour."""
    if not ticket:
        return None
    try:
        found = signing.loads(ticket, salt=DETECTION_SALT, max_age=DETECTION_MAX_AGE)
        if (found["host"], found["port"]) == (host, port):
            return Mode(found["mode"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        pass
    return None


class ModeDetectForm(forms.Form):
    """The host and port "Detect the mode" asks, checked as the account's are."""

    host = forms.CharField(
        max_length=253,
        error_messages={"required": _("Please enter the server first.")},
    )
    port = port_field(error_messages={"required": _("Please enter the port first.")})

    def clean_host(self) -> str:
        value = bare_host(self.cleaned_data["host"])
        validate_host(value)
        return value


class ServerCheckForm(ModeDetectForm):
    """The values "Check the server" takes from the account form (saved or not): the
    account's own checks, with the password optional (only to try the login)."""

    mode = forms.ChoiceField(required=False, choices=[("", ""), *MODE_CHOICES])
    ca_file = forms.CharField(required=False, max_length=1024)
    username = forms.CharField(required=False, max_length=254)
    password = forms.CharField(required=False, max_length=PASSWORD_MAX, strip=False)
    sender = forms.CharField(required=False, max_length=254)

    def clean_ca_file(self) -> str:
        value = self.cleaned_data["ca_file"].strip()
        if value:
            validate_ca_file(value)
        return value

    def clean_username(self) -> str:
        value = self.cleaned_data["username"].strip()
        if value:
            validate_username(value)
        return value

    def clean_password(self) -> str:
        value = self.cleaned_data["password"]
        reject_control_chars(value)
        return value

    def clean_sender(self) -> str:
        value = self.cleaned_data["sender"].strip()
        if value:
            validate_address(value)
        return value


class AccountForm(forms.ModelForm):
    password = forms.CharField(
        label=_("Password"),
        required=False,
        max_length=PASSWORD_MAX,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    port = port_field(help_text=_("465 = SMTPS (implicit TLS), every other port STARTTLS."))

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
            "used_on",
        ]
        help_texts = {
            "ca_file": _("Optional: path to a CA file (PEM) on this server."),
            "tls_name": _(
                "Only for postfix and exim as relays, when the server is given as an IP "
                "address: the host name in its certificate, so that it can be checked."
            ),
            "verify": _("Switch off only to narrow down a problem."),
        }

    def __init__(self, *args, kept_password: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.kept_password = kept_password
        self.fields["mode"].choices = [("", _("automatic by port")), *MODE_CHOICES]
        self.fields["used_on"].empty_label = _("all servers")
        if kept_password:
            self.show_password_kept()
        elif self.instance.pk and self.instance.has_password:
            self.fields["password"].help_text = _(
                "A password is stored. Leave empty to keep it."
            )
        else:
            self.fields["password"].help_text = _("Stored encrypted.")

    def clean_name(self) -> str:
        return self.cleaned_data["name"].strip()

    def show_password_kept(self) -> None:
        text = _(
            "The password you typed is kept (it is not shown). Leave the field empty to use "
            "it, or type another."
        )
        # The bound field copies its help text when made, which validation already did.
        self.fields["password"].help_text = self["password"].help_text = text

    def clean_host(self) -> str:
        return bare_host(self.cleaned_data["host"])

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip()

    def clean_password(self) -> str:
        value = self.cleaned_data.get("password") or self.kept_password
        reject_control_chars(value)
        if not value and not (self.instance.pk and self.instance.has_password):
            raise ValidationError(_("Please enter a password."), code="required")
        return value

    def clean_sender(self) -> str:
        return self.cleaned_data["sender"].strip()

    def clean_recipient(self) -> str:
        return self.cleaned_data["recipient"].strip()

    def clean_ca_file(self) -> str:
        return self.cleaned_data.get("ca_file", "").strip()

    def clean_tls_name(self) -> str:
        return self.cleaned_data.get("tls_name", "").strip().rstrip(".")

    def save(self, commit: bool = True) -> Account:
        account = super().save(commit=False)
        password = self.cleaned_data.get("password")
        if password:
            account.set_password(password)
        detected = read_detection(self.data.get(DETECTION_FIELD, ""), account.host, account.port)
        if detected is not None:
            account.record_detection(detected)
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
        super().__init__(*args, **kwargs)
        self.fields["command"].choices = [("", _("all commands"))] + [
            (e.key, say(e.label)) for e in CATALOGUE
        ]
        self.fields["result"].choices = [("", _("all results")), *State.choices]
