"""manage.py order: the preferred order set and shown over SSH, with the order page's
rules (an unsuitable command first only when confirmed) and its audit log."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from xmailadmin.models import AuditEntry
from xmailadmin.order import current_order, enabled_keys

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("order", *args, stdout=out)
    return out.getvalue()


def test_set_switches_on_exactly_the_named_commands_in_that_order():
    run("set", "curl,python3, msmtp")

    assert enabled_keys() == ["curl", "python3", "msmtp"]
    assert current_order().order[:3] == ["curl", "python3", "msmtp"]
    shown = json.loads(run("show", "--json"))
    assert [r["key"] for r in shown if r["enabled"]] == ["curl", "python3", "msmtp"]
    assert len(shown) == len(current_order().order)
    entry = AuditEntry.objects.get(action=AuditEntry.Action.ORDER_CHANGED)
    assert entry.username == "system" and "manage.py order set" in entry.detail


def test_show_prints_a_line_per_command_first_used_first():
    run("set", "perl")
    lines = run("show").splitlines()

    assert lines[0].split()[:3] == ["1", "on", "perl"]
    assert all(" off " in line for line in lines[1:])


@pytest.mark.parametrize(
    ("keys", "words"),
    [("curl,nope", "unknown mail command nope"), ("curl,curl", "named twice")],
)
def test_a_bad_list_changes_nothing_and_says_why(keys, words):
    before = current_order()
    with pytest.raises(CommandError, match=words):
        run("set", keys)

    assert current_order() == before
    assert not AuditEntry.objects.exists()


def test_an_unsuitable_first_command_needs_confirm():
    with pytest.raises(CommandError, match="mutt is unsuitable.*--confirm"):
        run("set", "mutt,curl")
    assert enabled_keys()[:1] != ["mutt"]

    run("set", "mutt,curl", "--confirm")
    assert enabled_keys() == ["mutt", "curl"]
