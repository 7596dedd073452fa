"""The overview's status line (xmailadmin/status_line.py): whether mail sending works and
through which command, or what is wrong, from the rows the overview shows."""

from __future__ import annotations

import pytest
from django.utils import translation

from transports.texts import Text
from xmailadmin.models import Account, ProbeResult, ProbeRun, State, TestSend, TransportSetting
from xmailadmin.status_line import status_line
from xmailadmin.views.dashboard import _rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(db) -> list[str]:
    """Three commands enabled, in this order: curl, python3, msmtp."""
    keys = ["curl", "python3", "msmtp"]
    TransportSetting.ordered()
    TransportSetting.objects.exclude(key__in=keys).update(enabled=False)
    for position, key in enumerate(keys):
        TransportSetting.objects.filter(key=key).update(position=position)
    return keys


def _sent(account: Account, command: str, state: str = State.PASSED, **fields) -> TestSend:
    return TestSend.objects.create(
        account=account, account_name=account.name, command=command,
        recipient="a@example.org", state=state, **fields,
    )  # fmt: skip


def _failed(account: Account, command: str, reason: Text, **fields) -> TestSend:
    return _sent(
        account, command, State.FAILED, reason=str(reason), reason_text=reason.to_dict(),
        **fields,
    )  # fmt: skip


def _line(account: Account | None, language: str = "en") -> tuple[str, str]:
    """(level, the whole line) as the overview shows it."""
    with translation.override(language):
        line = status_line(account, _rows(account))
    return line.level, " ".join([line.headline, *line.details])


REFUSED = Text("could not connect to %(host)s:%(port)s", {"host": "127.0.0.1", "port": 1})
TIMED_OUT = Text("no answer within %(s)s s", {"s": 10})


def test_without_an_account_it_says_to_add_one(order):
    assert _line(None) == ("unknown", "No SMTP account yet: add one, then test the commands.")
    assert _line(None, "de")[1] == "Noch kein SMTP-Konto: eines anlegen, dann die Befehle testen."


def test_before_any_test_it_says_not_tested(order, offline_account):
    level, text = _line(offline_account)
    assert level == "unknown" and text.startswith("Not tested yet")


def test_the_first_in_the_order_passing_is_the_good_news(order, offline_account):
    _sent(offline_account, "curl")
    _sent(offline_account, "python3")
    _failed(offline_account, "msmtp", REFUSED)
    level, text = _line(offline_account)
    assert level == "partly"
    assert text == "Mail sending works through the first in the order, curl. 2 of 3 commands pass."
    assert _line(offline_account, "de")[1] == (
        "Der Mailversand funktioniert über den Ersten der Reihenfolge, curl. "
        "Test bestanden: 2 von 3 Befehlen."
    )


def test_all_passing_is_green(order, offline_account):
    for key in order:
        _sent(offline_account, key)
    assert _line(offline_account)[0] == "pass"


def test_a_failing_first_says_why_and_which_one_carried_the_test_mail(order, offline_account):
    _failed(offline_account, "curl", REFUSED)
    _sent(offline_account, "python3", State.WARNING)
    level, text = _line(offline_account)
    assert level == "partly"
    assert text.startswith(
        "The first in the order, curl, fails: could not connect to 127.0.0.1:1. "
        "In the tests, mail went through number 2 in the order: python3 (shipped script)."
    )
    assert "1 is not tested yet." in text


def test_all_failing_names_the_most_common_reason_and_the_usual_cause_of_timeouts(
    order, offline_account
):
    _failed(offline_account, "curl", TIMED_OUT, step="timeout", reason_code="timeout")
    _failed(offline_account, "python3", TIMED_OUT, step="timeout", reason_code="timeout")
    _failed(offline_account, "msmtp", REFUSED, step="connect", reason_code="refused")
    level, text = _line(offline_account)
    assert level == "fail"
    assert text.startswith("No command passes (3 tested); most often (2): no answer within 10 s.")
    assert "wrong encryption for the port" in text and str(offline_account.port) in text
    assert "Kein Befehl besteht den Test (3 getestet)" in _line(offline_account, "de")[1]


def test_commands_the_probe_found_missing_are_counted_apart(order, offline_account):
    run = ProbeRun.objects.create(state=State.PASSED)
    ProbeResult.objects.create(run=run, key="curl", found=False)
    _sent(offline_account, "python3")
    level, text = _line(offline_account)
    assert text.startswith("The first in the order, curl, is not installed.")
    assert "1 of 3 commands pass. 1 is not installed. 1 is not tested yet." in text
    assert "1 ist nicht installiert." in _line(offline_account, "de")[1]


def test_none_installed(order, offline_account):
    run = ProbeRun.objects.create(state=State.PASSED)
    for key in order:
        ProbeResult.objects.create(run=run, key=key, found=False)
    assert _line(offline_account) == ("fail", "None of the enabled commands is installed.")


def test_while_a_test_all_runs_it_counts_the_answers(order, offline_account):
    _sent(offline_account, "curl")
    _sent(offline_account, "python3", State.RUNNING)
    _sent(offline_account, "msmtp", State.QUEUED)
    level, text = _line(offline_account)
    assert (level, text) == (
        "running",
        "Test running: 2 commands still to answer. 1 of 3 have a result.",
    )


def test_no_command_enabled(order, offline_account):
    TransportSetting.objects.update(enabled=False)
    assert _line(offline_account) == ("fail", "No command is enabled: see Order.")
