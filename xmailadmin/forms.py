"""Forms: what a user types is normalised here; the model's validators check it.

The checks live on ``Account`` (``validators.py``) so that /admin/, management
commands and ORM code cannot skip them; a form only trims and normalises.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from transports.catalogue import CATALOGUE

from .models import Account, Mode, State
from .texts import say
from .validators import reject_control_chars

PASSWORD_MAX = 256


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
        return self.cleaned_data["name"].strip()

    def clean_host(self) -> str:
        value = self.cleaned_data["host"].strip()
        bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
        return bare.rstrip(".")

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip()

    def clean_password(self) -> str:
        value = self.cleaned_data.get("password") or ""
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
