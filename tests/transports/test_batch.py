"""Many messages over one connection: the shipped send scripts with ``--batch``.

Judged by what the loopback test server received: each message with its envelope, all
over one connection (the same client address and port) with one AUTH; a refusal fails
its message only; a failure of the way fails every message, and sends none.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from faulty_servers import DROP_IN_DATA, FaultyServer
from mailcommands import SENDER, SMTP_COMMANDS, make_target
from process_watch import ProcessWatcher
from smtp_server import TEST_ID_HEADER, header_is

from transports.base import Mode, SendResult, Step, Target, Transport
from transports.catalogue import transport_for
from transports.message import build_test_message
from transports.run import RunOutput
from transports.scripted import SCRIPTS
from transports.secrecy import MASK, secret_forms
from transports.texts import Text

MODES = [Mode.STARTTLS, Mode.SMTPS]
RECIPIENTS = ["erster@example.net", "zweiter@example.net", "dritter@example.net"]
UNKNOWN = "550 5.1.1 <%s>: Recipient address rejected: User unknown in virtual mailbox table"
LATER = "450 4.2.0 <%s>: Recipient address rejected: greylisted, try again later"
NOT_SENT = "not sent: the connection ended before this message"


@pytest.fixture(
    params=[c for c in SMTP_COMMANDS if c.id in ("python3", "python2.7", "perl")],
    ids=lambda c: c.id,
)
def script(request):
    cmd = request.param
    cmd.require()
    return cmd


@pytest.fixture
def refusing(smtp):
    yield smtp
    smtp.refused_recipients.clear()


@pytest.fixture
def holding(smtp):
    """The server takes each message but holds back its reply (250) until released."""
    smtp.hold_data = True
    yield smtp
    smtp.hold_data = False


def items(command: str, test_id: str, recipients=RECIPIENTS) -> list[tuple[str, bytes]]:
    return [
        (
            r,
            build_test_message(
                sender=SENDER, recipient=r, command=command, test_id=f"{test_id}-{n}"
            ),
        )
        for n, r in enumerate(recipients)
    ]


def dialogue(result: SendResult) -> str:
    return result.transcript.lower()


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_three_messages_go_over_one_connection_with_one_login(script, mode, smtp, mail_test_id):
    transport = script.transport()
    batch = items(script.key, mail_test_id)
    results = transport.send_many(make_target(smtp, mode), batch)

    assert transport.carries_many
    assert [r.ok for r in results] == [True] * 3, [r.transcript for r in results]
    got = [smtp.wait_for(header_is(TEST_ID_HEADER, f"{mail_test_id}-{n}")) for n in range(3)]
    assert len(smtp.messages()) == 3
    for n, (message, result) in enumerate(zip(got, results, strict=True)):
        assert message.mail_from == SENDER
        assert message.rcpt_tos == [RECIPIENTS[n]]
        assert message.auth_user == smtp.user
        assert message.mode == mode.value
        assert message.raw.replace(b"\r\n", b"\n") == batch[n][1]
        assert (result.step, result.reason_code, result.command) == (Step.DONE, "done", script.key)
        assert result.tls_version == message.tls_version
        assert result.duration_s > 0
        # Each transcript holds the login and this message's dialogue, not the others'.
        assert "auth " in dialogue(result)
        assert [r in dialogue(result) for r in RECIPIENTS] == [
            r == RECIPIENTS[n] for r in RECIPIENTS
        ]
    peers = {m.peer for m in got}
    assert len(peers) == 1, f"one connection expected, the server saw {peers}"
    assert smtp.auth_attempts == {peers.pop(): 1}


@pytest.mark.parametrize(("reply", "permanent"), [(UNKNOWN, True), (LATER, False)],
                         ids=["550", "450"])  # fmt: skip
def test_a_refused_recipient_fails_its_message_only(
    script, refusing, reply, permanent, mail_test_id
):
    refused = RECIPIENTS[1]
    refusing.refused_recipients[refused] = reply % refused
    results = script.transport().send_many(
        make_target(refusing, Mode.STARTTLS), items(script.key, mail_test_id)
    )

    first, middle, last = results
    assert first.ok and last.ok, (first.transcript, last.transcript)
    assert not middle.ok
    assert middle.step is Step.RCPT_TO, middle.transcript
    assert middle.permanent is permanent
    assert (reply % refused).split(": ", 1)[1] in middle.detail, "the server's own words"
    assert reply[:3] in middle.detail
    # The refused transaction is reset before the next message, on the same connection.
    assert "rset" in dialogue(last) and "rset" not in dialogue(middle)
    got = [refusing.wait_for(header_is(TEST_ID_HEADER, f"{mail_test_id}-{n}")) for n in (0, 2)]
    assert [m.rcpt_tos for m in got] == [[RECIPIENTS[0]], [RECIPIENTS[2]]]
    assert len(refusing.messages()) == 2
    assert got[0].peer == got[1].peer
    assert refusing.auth_attempts == {got[0].peer: 1}


def test_a_wrong_password_fails_every_message_at_auth_and_sends_none(script, smtp):
    wrong = "Wr0ng-but-secret"
    results = script.transport().send_many(
        make_target(smtp, Mode.STARTTLS, password=wrong), items(script.key, "x")
    )

    assert [r.step for r in results] == [Step.AUTH] * 3, results[0].transcript
    assert all("user or password" in str(r.reason) for r in results)
    assert smtp.messages() == []
    assert sum(smtp.auth_attempts.values()) == 1, "one login for the batch, not one a message"
    for result in results:
        for form in secret_forms(smtp.user, wrong):
            assert form not in result.transcript + str(result.reason) + result.detail


def test_the_password_is_in_no_argv_and_in_no_transcript(script, smtp, mail_test_id):
    transport = script.transport()
    target = make_target(smtp, Mode.SMTPS)
    with ProcessWatcher(target.password) as watcher:
        results = transport.send_many(target, items(script.key, mail_test_id))

    assert all(r.ok for r in results), [r.transcript for r in results]
    assert watcher.leaks == []
    expected = Path(transport.which() or "").name
    assert any(expected.startswith(seen) or seen.startswith(expected) for seen in watcher.seen), (
        f"the watcher never saw {expected}: {sorted(watcher.seen)[:30]}"
    )
    for result in results:
        assert MASK in result.transcript  # the AUTH line is there, masked
        for form in secret_forms(target.user, target.password):
            assert form not in result.transcript + str(result.reason) + result.detail


def test_a_connection_lost_in_a_message_fails_it_and_every_later_one(script, pki):
    with FaultyServer(pki, DROP_IN_DATA, implicit_tls=False) as server:
        target = Target(
            host="localhost", port=server.port, mode=Mode.STARTTLS, user=server.user,
            password=server.password, sender=SENDER, recipient=RECIPIENTS[0],
            ca_file=str(server.ca_file), timeout=10.0,
        )  # fmt: skip
        results = script.transport().send_many(target, items(script.key, "x"))
        assert server.reached("dropped_in_data")

    assert [r.step for r in results] == [Step.DATA] * 3, results[0].transcript
    assert {r.reason_code for r in results} == {"closed_in_data"}
    assert not any(r.permanent for r in results), "a lost connection is worth another try"
    assert NOT_SENT not in results[0].transcript
    assert all(NOT_SENT in r.transcript for r in results[1:])
    assert all(r.duration_s < 10.0 for r in results)


def test_a_lost_reply_to_a_message_fails_it_and_the_rest_within_the_read_timeout(script, holding):
    # The server has the first message but never confirms it: the caller must send it
    # again (at least once), and the later ones were never sent.
    started = holding.data_started
    results = script.transport().send_many(
        make_target(holding, Mode.STARTTLS, timeout=4.0), items(script.key, "x")
    )

    assert [r.step for r in results] == [Step.TIMEOUT] * 3, results[0].transcript
    assert all("no reply to the message" in str(r.reason) for r in results)
    assert holding.data_started == started + 1
    # The script's own read timeout (the target's, less 2 s) ended it, not the run's limit.
    assert sum(r.duration_s for r in results) < 4.0 + 2
    assert holding.messages() == []


def test_an_invalid_recipient_fails_its_message_only(script, smtp, mail_test_id):
    recipients = [RECIPIENTS[0], "kein empfaenger", RECIPIENTS[2]]
    results = script.transport().send_many(
        make_target(smtp, Mode.STARTTLS), items(script.key, mail_test_id, recipients)
    )

    assert [r.ok for r in results] == [True, False, True], [r.transcript for r in results]
    assert results[1].step is Step.CONFIG
    assert "not a valid mail address" in str(results[1].reason)
    got = [smtp.wait_for(header_is(TEST_ID_HEADER, f"{mail_test_id}-{n}")) for n in (0, 2)]
    assert [m.rcpt_tos for m in got] == [[RECIPIENTS[0]], [RECIPIENTS[2]]]
    assert got[0].peer == got[1].peer


def test_a_missing_interpreter_or_ca_file_is_the_result_of_every_message(script, smtp):
    missing = transport_for(script.key, "/nonexistent/interpreter")
    unusable = make_target(smtp, Mode.STARTTLS, ca_file="/nonexistent/ca.pem")

    absent = missing.send_many(make_target(smtp, Mode.STARTTLS), items(script.key, "x"))
    no_ca = script.transport().send_many(unusable, items(script.key, "x"))

    assert [r.reason_code for r in absent] == ["not_installed"] * 3
    assert [r.reason_code for r in no_ca] == ["ca_file_unusable"] * 3
    assert len({id(r) for r in absent + no_ca}) == 6, "one result object a message"
    assert smtp.messages() == []


@pytest.mark.parametrize(
    "form",
    [["--to=a@example.net", "--message=/dev/null", "--batch=/dev/null"],
     ["--to=a@example.net", "--batch=/dev/null"],
     ["--message=/dev/null", "--batch=/dev/null"],
     ["--to=a@example.net"],
     []],
    ids=["all-three", "to-and-batch", "message-and-batch", "to-alone", "neither"],
)  # fmt: skip
def test_the_script_takes_either_to_and_message_or_batch(script, refused_port, form):
    transport = script.transport()
    argv = [
        transport.which(), str(SCRIPTS / transport.script), "--host=127.0.0.1",
        f"--port={refused_port}", "--user=u", "--password-file=-", f"--from={SENDER}", *form,
    ]  # fmt: skip
    done = subprocess.run(argv, input=b"pw\n", capture_output=True, timeout=30)

    assert done.returncode == 2, done.stderr
    assert b"either --to and --message, or --batch" in done.stderr
    assert b"XMAILADMIN-RESULT" not in done.stdout


def test_a_malformed_batch_file_is_a_usage_error(script, tmp_path, refused_port):
    transport = script.transport()
    batch = tmp_path / "batch.jsonl"
    batch.write_text('{"to": "a@example.net", "message": "/dev/null"}\n{"to": 1}\n')
    argv = [
        transport.which(), str(SCRIPTS / transport.script), "--host=127.0.0.1",
        f"--port={refused_port}", "--user=u", "--password-file=-", f"--from={SENDER}",
        f"--batch={batch}",
    ]  # fmt: skip
    done = subprocess.run(argv, input=b"pw\n", capture_output=True, timeout=30)

    assert done.returncode == 2
    assert b"line 2 of the batch file" in done.stderr


# --- the default: one send a message --------------------------------------


class Recording(Transport):
    """A transport that runs nothing: it records each send and echoes the password."""

    key = "recording"

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def which(self) -> str | None:
        return "/bin/true"

    def _send(self, exe: str, target: Target, message: bytes) -> SendResult:
        self.sent.append(target.recipient)
        return SendResult(
            ok=True, step=Step.DONE, reason=Text("sent"), transcript=f"pw={target.password}"
        )


def test_the_default_sends_one_by_one_and_an_invalid_recipient_fails_alone(smtp):
    transport = Recording()
    target = make_target(smtp, Mode.STARTTLS, verify=False)
    results = transport.send_many(
        target, [(RECIPIENTS[0], b"x"), ("kein empfaenger", b"y"), (RECIPIENTS[2], b"z")]
    )

    assert not transport.carries_many
    assert not transport_for("curl").carries_many
    assert transport.sent == [RECIPIENTS[0], RECIPIENTS[2]]
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].step is Step.CONFIG and results[1].reason_code == "config"
    assert "not a valid mail address" in str(results[1].reason)
    # The same cleaning as send(): the password masked, the unchecked certificate said.
    for result in (results[0], results[2]):
        assert result.command == "recording"
        assert target.password not in result.transcript and MASK in result.transcript
        assert result.verified is False and any("not verified" in str(w) for w in result.warnings)


def test_a_run_killed_in_the_middle_keeps_what_went_and_fails_the_rest(smtp):
    # What a batch prints when our limit kills it while it waits for item 1's MAIL FROM.
    out = RunOutput(
        argv=["python3", "send_mail.py"],
        returncode=None,
        timed_out=True,
        duration_s=9.0,
        stdout='XMAILADMIN-RESULT {"item": 0, "step": "done", "tls_version": "TLSv1.3"}\n',
        stderr=(
            "send: 'AUTH PLAIN ********'\nreply: b'235 2.7.0 Authentication successful'\n"
            "XMAILADMIN-ITEM 0\nsend: 'mail FROM:<a@example.org>'\nreply: b'250 OK'\n"
            "XMAILADMIN-ITEM 1\nsend: 'rset'\nreply: b'250 OK'\nsend: 'mail FROM:<a@example.org>'\n"
        ),
    )
    targets = [make_target(smtp, Mode.STARTTLS, recipient=r) for r in RECIPIENTS]
    results = transport_for("python3").item_outcomes(out, targets)

    assert [r.ok for r in results] == [True, False, False]
    assert results[0].tls_version == "TLSv1.3" and results[0].exit_code == 0
    assert [r.step for r in results[1:]] == [Step.TIMEOUT] * 2
    assert str(results[1].reason) == str(results[2].reason)
    assert "rset" in results[1].transcript and "rset" not in results[2].transcript
    assert all("235 2.7.0" in r.transcript for r in results)
