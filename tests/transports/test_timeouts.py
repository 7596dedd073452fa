"""A timeout says what the command waited for and how long; a wrong TLS mode says so.

Every SMTP command meets a server that never answers, the wrong port for its mode in
both directions, and servers that stop answering at one step. Where a command's output
does not show how far it got (measured on Debian 12), the reason still names the
seconds waited and nothing wrong about the step.
"""

from __future__ import annotations

import pytest
from faulty_servers import DROP_IN_DATA, FaultyServer
from german import has_german
from mailcommands import RECIPIENT, SENDER, make_target, plain_target

from transports.base import Mode, Step, Target
from transports.classify import WAITED_FOR
from transports.message import build_test_message

TIMEOUT = 4.0
SLACK = 3.0
# Commands that show nothing before the server's first word: mutt (its dialogue is in a
# debug file outcome() does not read), msmtp and Perl's Net::SMTP print no "connected".
NO_GREETING_SHOWN = {"mutt", "msmtp", "perl", "mailutils"}
# Commands whose transcript shows no step at all while waiting (msmtp without a reply
# echo in TLS, mutt as above, Heirloom syntax on s-nail without -vv).
NO_STEP_SHOWN = {"mutt", "msmtp", "heirloom-syntax-on-s-nail"}


def message(command) -> bytes:
    return build_test_message(sender=SENDER, recipient=RECIPIENT, command=command.key, test_id="x")


def assert_timed_out_with_seconds(result, seconds: str = "4") -> str:
    assert not result.ok and result.step is Step.TIMEOUT, result.transcript[-2000:]
    assert result.reason_code == "timeout"
    reason = str(result.reason)
    assert f"within {seconds} s" in reason or "within 1 s" in reason, reason  # curl: 1/3
    assert result.duration_s < TIMEOUT + SLACK
    return reason


def test_starttls_at_an_implicit_tls_port_says_no_greeting_and_smtps(command, smtp):
    target = make_target(smtp, Mode.STARTTLS, port=smtp.smtps_port, timeout=TIMEOUT)
    result = command.transport().send(target, message(command))

    reason = assert_timed_out_with_seconds(result)
    if command.id not in NO_GREETING_SHOWN:
        assert "no greeting from the server" in reason
        assert "implicit TLS (SMTPS)" in reason


def test_a_silent_server_is_a_timeout_with_the_seconds(command, silent_server):
    result = command.transport().send(plain_target(silent_server.port, TIMEOUT), message(command))

    reason = assert_timed_out_with_seconds(result)
    assert silent_server.accepted >= 1
    if command.id not in NO_GREETING_SHOWN:
        assert "no greeting from the server" in reason


def test_smtps_at_a_starttls_port_says_the_server_answered_in_clear_text(command, smtp):
    target = make_target(smtp, Mode.SMTPS, port=smtp.starttls_port, timeout=TIMEOUT)
    result = command.transport().send(target, message(command))

    assert not result.ok and result.step is Step.TLS, result.transcript[-2000:]
    if command.id == "mailutils":
        # "TLS error" and nothing else: no way to tell, the reason says both.
        assert result.reason_code == "tls_error"
        return
    assert result.reason_code == "tls_clear_reply", str(result.reason)
    assert "answered in clear text" in str(result.reason)
    assert "probably expects STARTTLS" in str(result.reason)


class StallingServer(FaultyServer):
    """Answers properly up to ``stall_at`` (a verb, "tls" after STARTTLS's 220, or
    "message" after the message's end), then says nothing until stopped."""

    def __init__(self, pki, stall_at: str, *, implicit_tls: bool) -> None:
        super().__init__(pki, DROP_IN_DATA, implicit_tls=implicit_tls)
        self.stall_at = stall_at

    def _stall(self) -> bool:
        self.events.append("stalled")
        self._stopping.wait()
        return False

    def _answer(self, conn, session, verb: str, line: str) -> bool:
        if verb == "STARTTLS" and self.stall_at == "tls":
            conn.send("220 2.0.0 Ready to start TLS")
            return self._stall()
        if verb == self.stall_at:
            return self._stall()
        return super()._answer(conn, session, verb, line)

    def _data(self, conn) -> bool:
        conn.send("354 End data with <CR><LF>.<CR><LF>")
        conn.read_data()
        if self.stall_at == "message":
            return self._stall()
        conn.send("250 2.0.0 OK queued")
        return True


STALLS = {
    "EHLO": "no reply to EHLO",
    "AUTH": "no reply to AUTH",
    "message": "no reply to the message",
}


@pytest.mark.parametrize("stall_at", list(STALLS))
@pytest.mark.parametrize("mode", [Mode.STARTTLS, Mode.SMTPS], ids=lambda m: m.value)
def test_a_server_that_stops_answering_names_the_step_waited_at(command, pki, mode, stall_at):
    with StallingServer(pki, stall_at, implicit_tls=mode is Mode.SMTPS) as server:
        target = Target(
            host="localhost", port=server.port, mode=mode, user=server.user,
            password=server.password, sender=SENDER, recipient=RECIPIENT,
            ca_file=str(server.ca_file), timeout=TIMEOUT,
        )  # fmt: skip
        result = command.transport().send(target, message(command))

    assert server.reached("stalled")
    reason = assert_timed_out_with_seconds(result)
    if command.id in NO_STEP_SHOWN or (command.id == "openssl" and stall_at == "EHLO"):
        # s_client reads the first EHLO reply itself, before it says anything.
        assert not any(phrase in reason for phrase in STALLS.values() if phrase != STALLS[stall_at])
        return
    if command.id == "msmtp" and not (stall_at == "EHLO" and mode is Mode.STARTTLS):
        return
    assert STALLS[stall_at] in reason, reason


def test_every_timeout_reason_has_a_german_text():
    assert [msgid for msgid in WAITED_FOR.values() if not has_german(msgid)] == []
