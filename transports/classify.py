"""From a tool's exit code and words to the step that failed and a reason to act on.

Each transport knows its own exit codes (curl 67 = login denied, msmtp 77 =
authentication failed...); what the tools print in words is similar enough
to share one list of patterns, tried in order, most specific first.

Two kinds of failure are read from the whole transcript rather than from one
line, because the tools' own words for them ("unexpected eof", "TLS error",
"read error") would otherwise pass for a TLS handshake failure: a connection
that ended under the dialogue (the step is the SMTP command the transcript shows
last) and a reply too long to be SMTP (:func:`broken_off`).
"""

from __future__ import annotations

import re
import signal

from .base import MESSAGE_STEPS, SendResult, Step, Target
from .run import RunOutput
from .texts import Text, gettext_noop

# Each reason is a message id: Text(msgid, params) with the target's values.
REASONS: dict[Step, str] = {
    Step.CONNECT: gettext_noop(
        "could not connect to %(host)s:%(port)s: check host name, port and firewall"
    ),
    Step.TLS: gettext_noop(
        "TLS failed: the certificate is not trusted or does not match the host, or the mode "
        "is wrong (465 = implicit TLS, other ports STARTTLS)"
    ),
    Step.EHLO: gettext_noop("the server refused the greeting (EHLO)"),
    Step.AUTH: gettext_noop("the server rejected user or password"),
    Step.MAIL_FROM: gettext_noop("the server refused the sender address %(sender)s"),
    Step.RCPT_TO: gettext_noop("the server refused the recipient %(recipient)s"),
    Step.DATA: gettext_noop("the server refused the message"),
    Step.QUEUE: gettext_noop("the local mail system did not accept the message"),
    Step.UNSUPPORTED: gettext_noop("this command cannot send this way"),
    Step.TIMEOUT: gettext_noop(
        "no answer from the server within %(seconds)s s: check host, port and mode "
        "(465 = implicit TLS, others STARTTLS)"
    ),
    Step.UNKNOWN: gettext_noop("the command failed"),
}
# A reason with the tool's own words after it.
WITH_DETAIL = gettext_noop("%(reason)s (%(detail)s)")

# Reasons that are no step of their own: code -> message id.
CONNECTION_CLOSED = "connection_closed"
CLOSED_IN_DATA = "closed_in_data"
REPLY_TOO_LONG = "reply_too_long"
NO_STARTTLS = "no_starttls"
TLS_ERROR = "tls_error"
SENDER_REFUSED = "sender_refused"
TLS_CLEAR_REPLY = "tls_clear_reply"
CODE_REASONS: dict[str, str] = {
    CONNECTION_CLOSED: gettext_noop(
        "the connection ended before the server answered: the server closed it (or the "
        "network broke it off)"
    ),
    CLOSED_IN_DATA: gettext_noop(
        "the connection ended during the message (DATA) before the server accepted it: the "
        "server closed it (or the network broke it off)"
    ),
    REPLY_TOO_LONG: gettext_noop(
        "the server's reply was too long or not SMTP: is %(host)s:%(port)s an SMTP server?"
    ),
    NO_STARTTLS: gettext_noop(
        "the server's reply to EHLO does not offer STARTTLS (or is not SMTP): "
        "465 = implicit TLS, other ports STARTTLS"
    ),
    TLS_ERROR: gettext_noop(
        "TLS failed and the command does not say why: the mode may not fit the port "
        "(465 = implicit TLS, others STARTTLS), or the server ended the connection"
    ),
    SENDER_REFUSED: gettext_noop(
        "the server refused the sender address %(sender)s: the login may not send as this "
        "address, or the server does not accept it"
    ),
    TLS_CLEAR_REPLY: gettext_noop(
        "the server answered in clear text where the TLS handshake was expected: the port "
        "probably expects STARTTLS"
    ),
}

# A reply that refuses the sender, whichever SMTP command it answers: postfix's
# reject_sender_login_mismatch answers at RCPT ("553 5.7.1 <sender>: Sender address
# rejected: not owned by user U"), and a tool reads that as a refused recipient. By the
# enhanced status code (RFC 3463: X.1.7 bad sender address, X.1.8 bad sender's domain)
# or by the words.
SENDER_WORDS = re.compile(
    r"\b[45]\.1\.[78]\b|sender address rejected|not owned by (?:user|the user|login)"
    r"|sender (?:address )?(?:rejected|refused|not allowed|not authori[sz]ed)",
    re.I,
)
# The steps at which a server may answer for the sender.
_SENDER_ANSWERED_AT = frozenset({Step.MAIL_FROM, Step.RCPT_TO, Step.DATA})

# The server's reply was too long or no SMTP at all, in the tools' words.
TOO_LONG = re.compile(
    r"line too long|longer than \d+ (?:bytes|lines)|too large response|response too long"
    r"|reply (?:is |was )?too long|excessive server response|invalid server response"
    r"|sent an invalid reply",
    re.I,
)
# The EHLO reply named no STARTTLS.
STARTTLS_MISSING = re.compile(
    r"didn't find STARTTLS|does not offer STARTTLS|does not support STARTTLS"
    r"|Command unknown: 'STARTTLS'",
    re.I,
)
# The connection ended under the tool: closed, reset or cut, read or written.
CLOSED = re.compile(
    r"connection (?:unexpectedly )?closed|unexpected eof|non-properly terminated"
    r"|response reading failed|connection reset|broken pipe|server not connected"
    r"|SMTPServerDisconnected|Error in the (?:pull|push) function|\b(?:recv|send) failure"
    r"|\b(?:read|write) error\b|cannot (?:read from|write to) TLS connection"
    r"|no reply: the connection",
    re.I,
)
# Lines that prove the TLS handshake was done (the tool names the session it has).
TLS_UP = re.compile(
    r"SSL connection using|TLS connection using|^Protocol version: |^Verification: OK"
    r"|^CONNECTION ESTABLISHED|^TLS session parameters|tls_socket_(?:read|write)",
    re.I | re.M,
)
# Lines by which a tool shows that it echoes the SMTP dialogue: without them (s-nail
# below -vv) the transcript cannot tell at which command a connection ended.
_ECHOES = re.compile(
    r"^(?:\* Connected to |<-- |--> |< \d{3}|\[[^\]]*\] (?:Connected to \S+ on fd=|\d+[<>] )"
    r"|(?:[\w.-]+: )?[SC]: |(?:[\w.-]+: )?>>> |reading recipients from)",
    re.M,
)
# A command the client sent, as curl (> ), msmtp (-->), mutt ([time] 4>), Mailutils and
# our s_client dialogue (C: ) and s-nail -vv (s-nail: >>> ) echo it.
_SENT = re.compile(
    r"^(?:> |--> |\[[^\]]*\] \d+> |(?:[\w.-]+: )?C: |(?:[\w.-]+: )?>>> (?!SERVER: ))([A-Za-z]+)",
    re.M,
)
# A reply line of the server, as the same tools echo it.
_RECEIVED = re.compile(
    r"^(?:< |<-- |\[[^\]]*\] \d+< |(?:[\w.-]+: )?S: |(?:[\w.-]+: )?>>> SERVER: )"
)
_RECEIVED_ANY = re.compile(_RECEIVED.pattern, re.M)
COMMAND_STEPS = {
    "EHLO": Step.EHLO,
    "HELO": Step.EHLO,
    "STARTTLS": Step.TLS,
    "AUTH": Step.AUTH,
    "MAIL": Step.MAIL_FROM,
    "RCPT": Step.RCPT_TO,
    "DATA": Step.DATA,
    "BDAT": Step.DATA,
}
# RFC 5321 allows 512 bytes a reply line; a reply (all its lines) beyond this is no SMTP.
REPLY_LIMIT = 64 * 1024

_TIMED_OUT = re.compile(
    r"timed out|time-out|timeout (?:expired|reached|was reached)|network read error", re.I
)
# (step, pattern) in order: the first match wins.
PATTERNS: list[tuple[Step, re.Pattern[str]]] = [
    (Step.TIMEOUT, _TIMED_OUT),
    (
        Step.AUTH,
        re.compile(
            r"\b535\b|\b530\b|\b534\b|authenticat\w* fail|login denied|SASL"
            r"|auth\w* (?:error|failed)|credentials invalid|No authentication type",
            re.I,
        ),
    ),
    (
        Step.TLS,
        re.compile(
            r"certificat|verif\w* (?:error|fail)|issuer|x509|handshake|wrong version number"
            r"|\bSSL\b|\bTLS\b|gnutls|unknown ca|hostname mismatch|does not match",
            re.I,
        ),
    ),
    (
        Step.CONNECT,
        re.compile(
            r"connection refused|couldn'?t connect|could not connect|cannot connect|connect\(\) "
            r"|no route to host|network is unreachable|name or service not known|could not resolve"
            r"|resolve host|temporary failure in name resolution|Errno 111|Errno 113"
            # s-nail's only word for a refused connection: no "connected." after the dots
            r"|Connecting to \S+ \.\.\.(?! connected)",
            re.I,
        ),
    ),
    # msmtp's own words name the address: "recipient address X not accepted by the server".
    (
        Step.MAIL_FROM,
        re.compile(
            r"MAIL FROM|sender (?:address )?(?:rejected|refused)"
            r"|envelope from address \S+ not accepted",
            re.I,
        ),
    ),
    (
        Step.RCPT_TO,
        re.compile(r"RCPT|recipient (?:address )?(?:\S+ )?(?:rejected|refused|not accepted)", re.I),
    ),
    (Step.DATA, re.compile(r"\bDATA\b|message (?:rejected|refused)|\b552\b|\b554\b", re.I)),
    (Step.EHLO, re.compile(r"\bEHLO\b|\bHELO\b", re.I)),
]


# OpenSSL's own reason why the certificate failed ("verify error:num=64:IP address
# mismatch"), which s_client prints before its generic "certificate verify failed".
_VERIFY_ERROR = re.compile(r"^verify error:num=\d+:", re.I)


# A tool's verdict is among its last lines; a server that sends megabytes makes a tool
# echo a hundred thousand lines, and reading each against every pattern took seconds.
VERDICT_LINES = 5000


def _latest_lines(text: str) -> list[str]:
    """The last VERDICT_LINES non-empty lines, stripped, latest first."""
    lines = []
    for line in reversed(text.splitlines()):
        if line := line.strip():
            lines.append(line)
            if len(lines) == VERDICT_LINES:
                break
    return lines


def _own_lines(text: str) -> list[str]:
    """The tool's own lines, latest first: not its echo of the dialogue, not its noise."""
    return [ln for ln in _latest_lines(text) if not _DIALOGUE.match(ln) and not _NOISE.search(ln)]


def key_line(text: str) -> str:
    """The line of a tool's output that says most about the failure.

    The latest line naming a known failure wins, the tool's own words before
    its echo of the dialogue.
    """
    lines = _latest_lines(text)
    lines = [ln for ln in lines if not _NOISE.search(ln)] or lines
    own = [ln for ln in lines if not _DIALOGUE.match(ln)]
    if verify_error := next((ln for ln in own if _VERIFY_ERROR.search(ln)), None):
        return verify_error[:300]
    for candidates in (own, lines):
        for line in candidates:
            if any(pattern.search(line) for _step, pattern in PATTERNS):
                return line[:300]
    return (own or lines or [""])[0][:300]


def step_from_text(text: str) -> Step:
    line = key_line(text)
    for step, pattern in PATTERNS:
        if pattern.search(line):
            return step
    return Step.UNKNOWN


def command_step(line: str) -> Step | None:
    """The step an SMTP command belongs to: "MAIL FROM:<a@b>" -> MAIL_FROM."""
    return COMMAND_STEPS.get(re.split(r"[\s:]", line.strip(), maxsplit=1)[0].upper())


def _sent_steps(text: str) -> list[Step]:
    """The steps of the SMTP commands the transcript shows sent, in order; the message
    after DATA is no command."""
    steps: list[Step] = []
    for match in _SENT.finditer(text):
        step = COMMAND_STEPS.get(match.group(1).upper())
        if step is not None:
            steps.append(step)
            if step is Step.DATA:
                break
    return steps


def dialogue_step(text: str) -> Step | None:
    """The step of the last SMTP command the transcript shows sent, or None."""
    steps = _sent_steps(text)
    return steps[-1] if steps else None


def tls_is_up(text: str, implicit_tls: bool) -> bool:
    """Whether the transcript shows the TLS handshake done: the tool names its session,
    or it spoke SMTP inside it (with implicit TLS: at all; else: after STARTTLS)."""
    if TLS_UP.search(text):
        return True
    steps = _sent_steps(text)
    if implicit_tls:
        return bool(steps) or _RECEIVED_ANY.search(text) is not None
    return Step.TLS in steps and steps.index(Step.TLS) < len(steps) - 1


def _step_at(text: str) -> Step:
    """Where the dialogue stood: at the last command sent (after STARTTLS with TLS up,
    the EHLO that follows it), at the greeting when the tool echoes the dialogue but sent
    nothing yet; UNKNOWN when it does not echo the dialogue at all."""
    step = dialogue_step(text)
    if step is Step.TLS and tls_is_up(text, implicit_tls=False):
        return Step.EHLO
    if step is not None:
        return step
    return Step.CONNECT if _ECHOES.search(text) else Step.UNKNOWN


def _oversized_reply(text: str) -> tuple[int, str] | None:
    """Where the transcript shows a server reply (its echoed lines) longer than
    REPLY_LIMIT: (offset of the end of its first line, that line), or None."""
    offset, size, first = 0, 0, None
    for line in text.splitlines(keepends=True):
        if _RECEIVED.match(line):
            if first is None:
                first = (offset + len(line), line.strip())
            size += len(line)
            if size > REPLY_LIMIT:
                return first
        else:
            size, first = 0, None
        offset += len(line)
    return None


def _unanswered(text: str) -> str | None:
    """ "no reply to EHLO" when the echoed dialogue ends with a command of ours."""
    sent = list(_SENT.finditer(text))
    if not sent or sent[-1].group(1).upper() not in COMMAND_STEPS:
        return None
    last_reply = max((m.start() for m in _RECEIVED_ANY.finditer(text)), default=-1)
    if last_reply > sent[-1].start():
        return None
    return f"no reply to {sent[-1].group(1).upper()}: the connection ended"


def broken_off(text: str, implicit_tls: bool) -> tuple[Step, str, str] | None:
    """(step, reason code, the tool's words) when the transcript shows that the server's
    reply was too long or not SMTP, that its EHLO reply named no STARTTLS, or that the
    connection ended under the SMTP dialogue (after the TLS handshake); else None.

    The step is the command the transcript shows last, so a connection closed after
    DATA is a DATA failure, whatever the tool calls it ("TLS error", "unexpected eof").
    """
    own = _own_lines(text)
    if line := next((ln for ln in own if TOO_LONG.search(ln)), None):
        return _step_at(text), REPLY_TOO_LONG, line[:300]
    if oversized := _oversized_reply(text):
        offset, first = oversized
        shown = first if len(first) <= 120 else f"{first[:120]}... [{len(first)} characters]"
        return _step_at(text[:offset]), REPLY_TOO_LONG, shown
    if line := next((ln for ln in own if STARTTLS_MISSING.search(ln)), None):
        return Step.EHLO, NO_STARTTLS, line[:300]
    closed = next((ln for ln in own if CLOSED.search(ln) or TLS_ERROR_WORDS.search(ln)), None)
    if closed is None and not _TIMED_OUT.search(text):
        closed = _unanswered(text)  # s-nail may end without a word: its echo stops there
    if closed is None or _TIMED_OUT.search(closed):
        return None  # "network read error: the operation timed out" is msmtp's timeout
    starttls_sent = Step.TLS in _sent_steps(text)
    if (implicit_tls or starttls_sent) and not tls_is_up(text, implicit_tls):
        return None  # ended in the TLS handshake: a TLS failure, read line by line
    if TLS_ERROR_WORDS.search(closed) and not CLOSED.search(closed) and not _sent_steps(text):
        return None  # "TLS error" and no dialogue: nothing tells it from a failed handshake
    step = _step_at(text)
    return step, CLOSED_IN_DATA if step is Step.DATA else CONNECTION_CLOSED, closed[:300]


# Lines that echo the SMTP dialogue ("< 220 ...", "--> EHLO", "S: ...") rather than
# the tool's own verdict.
_DIALOGUE = re.compile(r"^(?:[<>*{}]|-->|<--|[SC]: |send: |reply: |SMTP[<>]|Net::SMTP)")
# Lines that are never the verdict: msmtp's echo of its settings ("tls = on"), its
# certificate printout, s-nail's warnings about old variable names ("ssl-ca-file"), and
# the tools' reports of a TLS session that worked ("TLS connection using TLSv1.3").
_NOISE = re.compile(
    r"^[a-z_]+ = |variable superseded or obsoleted|^(?:Subject|Issuer|Common Name|"
    r"Organization|Serial number|Fingerprints|SHA\d+(?: \(deprecated\))?|Validity|"
    r"Activation time|Expiration time):"
    r"|(?:SSL|TLS) connection using|TLS certificate ok|^Verification: OK|^Verified peername"
    r"|^Peer certificate:|^TLS session parameters|^TLS certificate information:"
    # s-nail's printout of a certificate it accepted (-v), before any failure.
    r"|TLS \w+ fingerprint:|Certificate depth \d|Comparing subject_alt_name"
    r"|^(?:[\w.-]+: +)?(?:subject|issuer|notBefore|notAfter) = "
)
# Mailutils' only word for any TLS failure, a failed handshake and a dropped session alike.
TLS_ERROR_WORDS = re.compile(r"\bTLS error\b")


# (pattern on the tool's words, reason code, reason's message id): what kind of TLS
# failure it was.
TLS_REASONS = [
    (
        re.compile(
            r"hostname|host name|does not match|no alternative|mismatch|verifycn|num=6[24]\b", re.I
        ),
        "tls_hostname",
        gettext_noop("the server certificate does not match the host name %(host)s"),
    ),
    (
        re.compile(
            r"verif|issuer|unknown ca|self.signed|not trusted|untrusted|x509|certificat", re.I
        ),
        "tls_untrusted",
        gettext_noop(
            "the server certificate is not trusted: set the CA file or fix the server's chain"
        ),
    ),
    (
        re.compile(r"protocol version|unsupported protocol|no protocols available", re.I),
        "tls_version",
        gettext_noop(
            "no TLS version in common: the server or this command is too old (TLS 1.2 needed)"
        ),
    ),
    (TLS_ERROR_WORDS, TLS_ERROR, CODE_REASONS[TLS_ERROR]),
    (
        re.compile(
            r"wrong version number|packet length|record layer|unexpected (?:eof|message)"
            r"|unrecognized name|handshake|unexpected TLS packet",
            re.I,
        ),
        "tls_mode",
        gettext_noop(
            "TLS handshake failed: does the mode fit the port? (465 = implicit TLS, others "
            "STARTTLS)"
        ),
    ),
]


# An implicit-TLS client that read a clear-text greeting as a TLS record, in the words of
# OpenSSL ("wrong version number", "packet length too long") and GnuTLS.
CLEAR_REPLY = re.compile(
    r"wrong version number|packet length too long|unexpected TLS packet|unknown protocol", re.I
)


def _tls_reason(detail: str, implicit_tls: bool = False) -> tuple[str, str] | None:
    if implicit_tls and CLEAR_REPLY.search(detail):
        return TLS_CLEAR_REPLY, CODE_REASONS[TLS_CLEAR_REPLY]
    return next(((code, text) for p, code, text in TLS_REASONS if p.search(detail)), None)


# Steps whose reason the tool's words never change.
_FIXED = frozenset({Step.TIMEOUT, Step.CONFIG, Step.UNSUPPORTED, Step.QUEUE, Step.DONE})


def _classified(step: Step, detail: str, implicit_tls: bool = False) -> tuple[str, str]:
    """(reason code, reason's message id) for a step and the tool's words."""
    if step not in _FIXED:
        if TOO_LONG.search(detail):
            return REPLY_TOO_LONG, CODE_REASONS[REPLY_TOO_LONG]
        if STARTTLS_MISSING.search(detail):
            return NO_STARTTLS, CODE_REASONS[NO_STARTTLS]
    if step is Step.TLS:
        if tls := _tls_reason(detail, implicit_tls):
            return tls
    elif step in _SENDER_ANSWERED_AT and SENDER_WORDS.search(detail):
        return SENDER_REFUSED, CODE_REASONS[SENDER_REFUSED]
    elif step not in _FIXED and CLOSED.search(detail) and not _TIMED_OUT.search(detail):
        code = CLOSED_IN_DATA if step is Step.DATA else CONNECTION_CLOSED
        return code, CODE_REASONS[code]
    return step.value, REASONS.get(step, REASONS[Step.UNKNOWN])


def refined_step(step: Step, detail: str) -> Step:
    """The step the server's reply is about: MAIL FROM for a sender refused at RCPT or
    DATA, else ``step``."""
    if step in _SENDER_ANSWERED_AT and SENDER_WORDS.search(detail):
        return Step.MAIL_FROM
    return step


def reason_code(step: Step, detail: str = "", implicit_tls: bool = False) -> str:
    """A stable name for the reason, for the panel to translate: the step, tls_*, or one
    of CODE_REASONS."""
    return _classified(step, detail, implicit_tls)[0]


def reason_for(step: Step, target: Target, detail: str = "", code: str | None = None) -> Text:
    """The reason as a Text with the target's values it names, and the tool's words."""
    if code in CODE_REASONS:
        msgid = CODE_REASONS[code]
    else:
        msgid = _classified(step, detail, target.implicit_tls)[1]
    values = {
        "host": target.host,
        "port": target.port,
        "sender": target.sender,
        "recipient": target.recipient,
        "seconds": f"{target.timeout:g}",
    }
    text = Text(msgid, {k: v for k, v in values.items() if f"%({k})s" in msgid})
    return with_detail(text, detail)


def with_detail(text: Text, detail: str) -> Text:
    """``text`` followed by the tool's own words in brackets, when there are any."""
    return Text(WITH_DETAIL, {"reason": text, "detail": detail}) if detail else text


# The steps at which a server refuses with a reply of its own.
_REFUSALS = frozenset({Step.EHLO, Step.AUTH, Step.MAIL_FROM, Step.RCPT_TO, Step.DATA})
_REFUSAL_REPLY = re.compile(_RECEIVED.pattern + r"([45]\d\d(?:[ -].*)?)$", re.M)


# A server's refusal with its enhanced status code (RFC 3463), however a tool quotes it:
# "SMTP server: 451 4.3.0 <a@b>: busy".
_ENHANCED_REFUSAL = re.compile(r"(?<![\w.])[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}\b.*$", re.M)


def _refusing_line(text: str) -> str:
    """The server's last refusing reply in the transcript, or ""."""
    found = _REFUSAL_REPLY.findall(text) or _ENHANCED_REFUSAL.findall(text)
    return found[-1].strip()[:300] if found else ""


def with_server_reply(detail: str, text: str) -> str:
    """The tool's words and, where they leave it out ("RCPT failed: 553"), the server's
    last refusing reply as the transcript echoes it."""
    replies = _REFUSAL_REPLY.findall(text)
    reply = replies[-1].strip() if replies else ""
    if not reply or reply[3:].strip(" -") in detail:
        return detail
    return f"{detail} / {reply}"[:600] if detail else reply[:300]


def failed_at(
    step: Step, target: Target, detail: str, code: str | None = None, exit_code: int | None = None
) -> SendResult:
    """A failed send at ``step`` (MAIL FROM when the reply refuses the sender), its
    reason from the step and the tool's words."""
    step = refined_step(step, detail)
    return SendResult(
        ok=False,
        step=step,
        reason=reason_for(step, target, detail, code),
        reason_code=code or reason_code(step, detail, target.implicit_tls),
        exit_code=exit_code,
        detail=detail,
    )


def failure(
    out: RunOutput, target: Target, step: Step | None = None, detail: str | None = None
) -> SendResult:
    """A failed send: the step from the caller (exit code), from what the transcript
    shows (:func:`broken_off`) or from the tool's words."""
    code = None
    if out.timed_out:
        oversized = _oversized_reply(out.text)
        if oversized is None:
            return timed_out_run(out, target)
        # Still reading a reply of many megabytes when the time was up: that reply is
        # the fault, not a server that never answered.
        found = broken_off(out.text, target.implicit_tls)
        assert found is not None
        step, code, detail = found
    elif out.error:
        reason = Text(gettext_noop("could not start: %(error)s"), {"error": out.error})
        return SendResult(ok=False, step=Step.UNSUPPORTED, reason=reason, detail=out.error)
    elif step is None and detail is None and (found := broken_off(out.text, target.implicit_tls)):
        step, code, detail = found
    detail = detail if detail is not None else key_line(out.text)
    step = step or step_from_text(out.text)
    if step is Step.TIMEOUT and code is None:  # the tool's own timeout
        return timed_out_run(out, target, detail=detail)
    if step in _REFUSALS and code is None:
        detail = with_server_reply(detail, out.text)
    if step is Step.UNKNOWN and code is None and (crash := _crash(out)):
        return crash
    return staged_by_dialogue(failed_at(step, target, detail, code, exit_code=out.returncode),
                              out.text, target)  # fmt: skip


def _crash(out: RunOutput) -> SendResult | None:
    """A command killed by a signal it did not ask for (a crash, the OOM killer), when
    nothing it wrote explains its end: said as such, not "the command failed". SIGPIPE
    is a connection the server closed, left to the words around it."""
    if out.returncode is None or out.returncode >= 0 or -out.returncode == signal.SIGPIPE:
        return None
    try:
        name = signal.Signals(-out.returncode).name
    except ValueError:
        name = str(-out.returncode)
    reason = Text(gettext_noop("the command crashed (signal %(signal)s)"), {"signal": name})
    return SendResult(ok=False, step=Step.UNKNOWN, reason=reason, reason_code="crashed",
                      exit_code=out.returncode, detail=key_line(out.text))  # fmt: skip


def staged_by_dialogue(result: SendResult, text: str, target: Target) -> SendResult:
    """A failure whose words name no stage ("SMTP session failed: 451 4.3.0 ... busy")
    at the stage the dialogue shows the server refusing, with the server's words; else
    ``result`` as it is."""
    if result.step is not Step.UNKNOWN or not (refusal := _refusing_line(text)):
        return result
    sent = dialogue_step(text)
    if sent not in MESSAGE_STEPS:
        sent = Step.UNKNOWN  # no dialogue echoed: the stage stays open, the words do not
    if refusal in result.detail and sent is Step.UNKNOWN:
        return result
    detail = result.detail if refusal in result.detail else f"{result.detail} / {refusal}"
    return failed_at(sent, target, detail[:600], exit_code=result.exit_code)


# --- where a timed-out command waited -------------------------------------------------

# What the command waited for, as the transcript shows it: message ids with the seconds
# waited (the target's timeout). The SMTP verbs are no words to translate.
CONNECT, GREETING, HANDSHAKE, MESSAGE = "connect", "greeting", "handshake", "message"
_WAIT_COMMANDS = {
    "starttls": "STARTTLS", "ehlo": "EHLO", "auth": "AUTH", "mail_from": "MAIL FROM",
    "rcpt_to": "RCPT TO", "data": "DATA",
}  # fmt: skip
WAITED_FOR: dict[str, str] = {
    CONNECT: gettext_noop(
        "no connection to %(host)s:%(port)s within %(seconds)s s: check host name and port; "
        "a firewall may drop the packets"
    ),
    GREETING: gettext_noop("no greeting from the server within %(seconds)s s"),
    # A STARTTLS client at an implicit-TLS port: the server waits for the ClientHello.
    "greeting_in_clear": gettext_noop(
        "no greeting from the server within %(seconds)s s: the port probably expects "
        "implicit TLS (SMTPS), or the server hangs"
    ),
    # An implicit-TLS client: a STARTTLS server would have greeted in clear text at once.
    HANDSHAKE: gettext_noop(
        "no answer to the TLS handshake within %(seconds)s s: the server accepted the "
        "connection but says nothing"
    ),
    "handshake_after_starttls": gettext_noop(
        "no answer to the TLS handshake after STARTTLS within %(seconds)s s"
    ),
    "command": gettext_noop("no reply to %(command)s within %(seconds)s s"),
    MESSAGE: gettext_noop(
        "no reply to the message within %(seconds)s s: the server took DATA and the message "
        "but did not confirm them"
    ),
}
# Perl's Net::SMTP echoes "Net::SMTP=GLOB(0x...)>>> EHLO" and "...<<< 250 ...".
_WAIT_SENT = re.compile(_SENT.pattern + r"|^Net::SMTP\S*=GLOB\([^)]*\)>>> ([A-Za-z.]+)", re.M)
_WAIT_RECEIVED = re.compile(_RECEIVED.pattern + r"|^Net::SMTP\S*=GLOB\([^)]*\)<<< ", re.M)
# The tools' words for a TCP connection that is up.
_CONNECTED = re.compile(
    r"^\* Connected to |Connected to \S+ on fd=|Connecting to \S+ \.\.\. connected"
    r"|^connect: \(|^(?:[\w.-]+: )?S: |\bSSL connection using|^CONNECTION ESTABLISHED",
    re.M,
)


_WAITED_MS = re.compile(r"timed out after (\d+) milliseconds")


def waited_at(text: str, implicit_tls: bool) -> str | None:
    """What a command that ran out of time waited for, as far as its transcript shows:
    a key of WAITED_FOR, a key of _WAIT_COMMANDS, or None when the transcript does not
    tell (no echo of the dialogue)."""
    sent = [m for m in _WAIT_SENT.finditer(text) if _verb(m) in (*COMMAND_STEPS, ".")]
    replies = [m.start() for m in _WAIT_RECEIVED.finditer(text)]
    if not sent:
        if replies:
            return None  # greeted, and nothing sent: not a wait the transcript explains
        if not _CONNECTED.search(text):
            return None
        return HANDSHAKE if implicit_tls and not TLS_UP.search(text) else GREETING
    verb = _verb(sent[-1])
    answered = bool(replies) and replies[-1] > sent[-1].start()
    if verb == "." or (verb == "DATA" and answered):
        return MESSAGE
    if verb == "STARTTLS" and answered:
        return "handshake_after_starttls"
    if answered and verb != "AUTH":  # AUTH LOGIN: 334, then the echo of a base64 line
        return None
    return next((k for k, v in _WAIT_COMMANDS.items() if v.startswith(verb)), None)


def _verb(match: re.Match[str]) -> str:
    return (match.group(1) or match.group(2) or "").upper()


def timed_out(
    target: Target,
    at: str | None = None,
    exit_code: int | None = None,
    detail: str = "",
    seconds: float | None = None,
) -> SendResult:
    """A send that ran out of time, its reason naming what it waited for and how long
    (``seconds``, else the target's timeout)."""
    values: dict[str, object] = {"seconds": f"{target.timeout if seconds is None else seconds:g}"}
    if at in _WAIT_COMMANDS:
        msgid, values["command"] = WAITED_FOR["command"], _WAIT_COMMANDS[at]
    elif at == GREETING and not target.implicit_tls:
        msgid = WAITED_FOR["greeting_in_clear"]
    elif at == HANDSHAKE and not target.implicit_tls:
        msgid = WAITED_FOR["handshake_after_starttls"]
    elif at in WAITED_FOR:
        msgid = WAITED_FOR[at]
        if at == CONNECT:
            values.update(host=target.host, port=target.port)
    else:
        msgid = REASONS[Step.TIMEOUT]
    return SendResult(
        ok=False,
        step=Step.TIMEOUT,
        reason=with_detail(Text(msgid, values), detail),
        reason_code=Step.TIMEOUT.value,
        exit_code=exit_code,
        detail=detail,
    )


def timed_out_run(
    out: RunOutput, target: Target, at: str | None = None, detail: str = ""
) -> SendResult:
    """A command's run that ended in a timeout (its own or ours): what it waited for as
    ``at`` says (the shipped scripts know) or as its transcript shows."""
    at = at or waited_at(out.text, target.implicit_tls)
    waited = _WAITED_MS.search(out.text)  # curl's own limit is shorter than the target's
    seconds = round(int(waited.group(1)) / 1000, 1) if waited else None
    return timed_out(target, at, out.returncode, detail, seconds)
