"""SMTP accounts without a browser, for provisioning and support over SSH.

    manage.py account set NAME --host H --port P [--mode smtps|starttls|auto]
        --user U --password-file F --from A --to B
        [--ca-file F] [--tls-name N] [--verify|--no-verify] [--default]
    manage.py account list [--json]

``set`` creates the account or changes only the options given. The password comes from
a file (its first line; ``-`` = stdin), never from argv, and is never printed. The
values go through the same checks as the account form (the model's, on every save),
and the save goes into the audit log as the page's does.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from transports.base import Mode
from xmailadmin.forms import bare_host
from xmailadmin.models import Account

# Option of each model field, so that an error names what the caller typed.
OPTION_OF = {
    "name": "NAME",
    "host": "--host",
    "port": "--port",
    "mode": "--mode",
    "username": "--user",
    "password": "--password-file",
    "sender": "--from",
    "recipient": "--to",
    "ca_file": "--ca-file",
    "tls_name": "--tls-name",
    "verify": "--verify/--no-verify",
    "is_default": "--default",
}
REQUIRED_ON_CREATE = ("host", "port", "username", "password", "sender", "recipient")
# "auto" stores the empty mode: by port (465 = SMTPS, otherwise STARTTLS).
MODE_OPTIONS = {"auto": "", **{mode.value: mode.value for mode in Mode}}
AUDIT_SUFFIX = "(manage.py account set)"


class Command(BaseCommand):
    help = "Create, change or list the SMTP accounts."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="the accounts, default first; no passwords")
        listing.add_argument("--json", action="store_true")
        change = sub.add_parser("set", help="create an account or change the options given")
        change.add_argument("name", help="the account's name; an existing one is changed")
        change.add_argument("--host", help="server: host name or IP address")
        change.add_argument("--port", type=int)
        change.add_argument(
            "--mode", choices=list(MODE_OPTIONS), help="auto (the default) = by port"
        )
        change.add_argument("--user", dest="username", metavar="USER")
        change.add_argument(
            "--password-file",
            dest="password_file",
            metavar="FILE",
            help="the password is its first line; - = stdin",
        )
        change.add_argument("--from", dest="sender", metavar="ADDRESS")
        change.add_argument("--to", dest="recipient", metavar="ADDRESS", help="test recipient")
        change.add_argument("--ca-file", dest="ca_file", metavar="FILE", help="'' = none")
        change.add_argument(
            "--tls-name",
            dest="tls_name",
            metavar="NAME",
            help="certificate name (relays); '' = none",
        )
        change.add_argument(
            "--verify",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="check the server's certificate (new accounts: yes)",
        )
        change.add_argument("--default", action="store_true", help="make it the default")

    def handle(self, *args, action: str, **options) -> None:
        if action == "list":
            self._list(options["json"])
        else:
            self._set(options)

    # --- list ------------------------------------------------------------------------

    def _list(self, as_json: bool) -> None:
        accounts = list(Account.objects.all())
        if as_json:
            self.stdout.write(json.dumps([facts(a) for a in accounts], indent=2))
            return
        for account in accounts:
            self.stdout.write(line_of(account))

    # --- set -------------------------------------------------------------------------

    def _set(self, options: dict) -> None:
        name = options["name"].strip()
        values = given_values(options)
        account = Account.objects.filter(name=name).first()
        created = account is None
        if created:
            if missing := [f for f in REQUIRED_ON_CREATE if f not in values]:
                raise CommandError(
                    f"a new account needs {', '.join(OPTION_OF[f] for f in missing)}"
                )
            account = Account(name=name)
        changed = apply(account, values)
        make_default = options["default"] and not account.is_default
        if make_default:
            changed.append("is_default")
        elif created and not Account.objects.exists():
            make_default = True  # as on the pages: the first account is the default
        account.audit_as = (None, " ".join(filter(None, [", ".join(changed), AUDIT_SUFFIX])))
        save(account, make_default)
        self.stdout.write(f"account {account.name} {'created' if created else 'saved'}")
        for warning in warnings_of(account):
            self.stdout.write(f"warning: {warning}")


def given_values(options: dict) -> dict:
    """The model's fields the caller gave, tidied as the account form tidies them; the
    password read from its file."""
    values = {
        field: options[field]
        for field in ("host", "port", "username", "sender", "recipient", "ca_file", "tls_name")
        if options[field] is not None
    }
    for field in ("username", "sender", "recipient", "ca_file"):
        if field in values:
            values[field] = values[field].strip()
    if "host" in values:
        values["host"] = bare_host(values["host"])
    if "tls_name" in values:
        values["tls_name"] = values["tls_name"].strip().rstrip(".")
    if options["mode"] is not None:
        values["mode"] = MODE_OPTIONS[options["mode"]]
    if options["verify"] is not None:
        values["verify"] = options["verify"]
    if options["password_file"] is not None:
        values["password"] = read_password(options["password_file"])
    return values


def read_password(path: str) -> str:
    """The first line of the file (``-``: of stdin), without its line break."""
    try:
        if path == "-":
            first = sys.stdin.readline()
        else:
            with open(path, encoding="utf-8") as handle:
                first = handle.readline()
    except OSError as error:
        raise CommandError(f"cannot read the password file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"the password file {path} is not UTF-8 text") from None
    password = first.removesuffix("\n").removesuffix("\r")
    if not password:
        raise CommandError(f"the password file {path} starts with an empty line")
    return password


def apply(account: Account, values: dict) -> list[str]:
    """Set the values on the account; the names of those that changed (the password
    only as a name), for the audit log."""
    changed = []
    for field, value in values.items():
        if field == "password":
            with field_errors():
                account.set_password(value)
            changed.append("password")
        elif getattr(account, field) != value or account.pk is None:
            setattr(account, field, value)
            changed.append(field)
    return changed


def save(account: Account, make_default: bool) -> None:
    """Saved through the model's checks (its pre_save signal runs full_clean): an invalid
    value saves nothing."""
    with field_errors(), transaction.atomic():
        if make_default:
            # Two defaults at once break the database's constraint: make_default() moves
            # the flag in one transaction, as the account form does.
            account.is_default = False
            account.save()
            account.make_default()
        else:
            account.save()


@contextmanager
def field_errors() -> Iterator[None]:
    """A ValidationError as a CommandError naming the option and the message."""
    try:
        yield
    except ValidationError as error:
        raise CommandError(describe(error)) from None


def describe(error: ValidationError) -> str:
    if not hasattr(error, "error_dict"):
        return f"{OPTION_OF['password']}: {' '.join(error.messages)}"
    return " ".join(
        f"{OPTION_OF.get(field, field)}: {' '.join(ValidationError(problems).messages)}"
        for field, problems in error.error_dict.items()
    )


def warnings_of(account: Account) -> list[str]:
    notes = []
    if account.mode_mismatch:
        notes.append(
            f"port {account.port} is usually {account.port_mode}, the account says "
            f"{account.effective_mode}; check with: python -m transports detect-mode "
            f"--host {account.host} --port {account.port}"
        )
    if not account.verify:
        notes.append("certificate verification is off: use that only to narrow down a problem")
    return notes


def facts(account: Account) -> dict:
    """What ``list --json`` shows: everything but the password (not even encrypted)."""
    return {
        "name": account.name,
        "host": account.host,
        "port": account.port,
        "mode": account.mode,
        "effective_mode": account.effective_mode,
        "username": account.username,
        "sender": account.sender,
        "recipient": account.recipient,
        "ca_file": account.ca_file,
        "tls_name": account.tls_name,
        "verify": account.verify,
        "is_default": account.is_default,
        "has_password": account.has_password,
    }


def line_of(account: Account) -> str:
    mark = "*" if account.is_default else " "
    mode = account.effective_mode + ("" if account.mode else " (by port)")
    password = "password stored" if account.has_password else "no password"
    verify = "" if account.verify else "  certificate not verified"
    return (
        f"{mark} {account.name}  {account.where}  {mode}  user {account.username}  "
        f"from {account.sender}  to {account.recipient}  {password}{verify}"
    )
