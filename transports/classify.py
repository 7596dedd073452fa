"""From a tool's exit code and words to the step that failed and a reason to act on.

Each transport knows its own exit codes (curl 67 = login denied, msmtp 77 =
authentication failed...); what the tools print in words is similar enough
to share one list of patterns, tried in order, most specific first.
"""

from __future__ import annotations

import re

from .base import SendResult, Step, Target, timed_out
from .run import RunOutput

REASONS: dict[Step, str] = {
    Step.CONNECT: "could not connect to {host}:{port}: check host name, port and firewall",
    Step.TLS: (
        "TLS failed: the certificate is not trusted or does not match the host, or the mode "
        "is wrong (465 = implicit TLS, other ports STARTTLS)"
    ),
    Step.EHLO: "the server refused the greeting (EHLO)",
    Step.AUTH: "the server rejected user or password",
    Step.MAIL_FROM: "the server refused the sender address {sender}",
    Step.RCPT_TO: "the server refused the recipient {recipient}",
    Step.DATA: "the server refused the message",
    Step.QUEUE: "the local mail system did not accept the message",
    Step.UNSUPPORTED: "this command cannot send this way",
    Step.TIMEOUT: (
        "no answer in time: check host, port and mode (465 = implicit TLS, others STARTTLS)"
    ),
    Step.UNKNOWN: "the command failed",
}

# (step, pattern) in order: the first match wins.
PATTERNS: list[tuple[Step, re.Pattern[str]]] = [
    (
        Step.TIMEOUT,
        re.compile(
            r"timed out|time-out|timeout (?:expired|reached|was reached)|network read error", re.I
        ),
    ),
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
    (Step.MAIL_FROM, re.compile(r"MAIL FROM|sender (?:address )?(?:rejected|refused)", re.I)),
    (Step.RCPT_TO, re.compile(r"RCPT|recipient (?:address )?(?:rejected|refused)", re.I)),
    (Step.DATA, re.compile(r"\bDATA\b|message (?:rejected|refused)|\b552\b|\b554\b", re.I)),
    (Step.EHLO, re.compile(r"\bEHLO\b|\bHELO\b", re.I)),
]


def key_line(text: str) -> str:
    """The line of a tool's output that says most about the failure.

    The latest line naming a known failure wins, the tool's own words before
    its echo of the dialogue.
    """
    lines = [ln.strip() for ln in reversed(text.splitlines()) if ln.strip()]
    own = [ln for ln in lines if not _DIALOGUE.match(ln)]
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


# Lines that echo the SMTP dialogue ("< 220 ...", "--> EHLO", "S: ...") rather than
# the tool's own verdict.
_DIALOGUE = re.compile(r"^(?:[<>*{}]|-->|<--|[SC]: |send: |reply: |SMTP[<>]|Net::SMTP)")


# (pattern on the tool's words, reason code, reason): what kind of TLS failure it was.
TLS_REASONS = [
    (
        re.compile(
            r"hostname|host name|does not match|no alternative|mismatch|verifycn|num=62", re.I
        ),
        "tls_hostname",
        "the server certificate does not match the host name {host}",
    ),
    (
        re.compile(
            r"verif|issuer|unknown ca|self.signed|not trusted|untrusted|x509|certificat", re.I
        ),
        "tls_untrusted",
        "the server certificate is not trusted: set the CA file or fix the server's chain",
    ),
    (
        re.compile(r"protocol version|unsupported protocol|no protocols available", re.I),
        "tls_version",
        "no TLS version in common: the server or this command is too old (TLS 1.2 needed)",
    ),
    (
        re.compile(
            r"wrong version number|packet length|record layer|unexpected (?:eof|message)"
            r"|unrecognized name|handshake|unexpected TLS packet|TLS error",
            re.I,
        ),
        "tls_mode",
        "TLS handshake failed: does the mode fit the port? (465 = implicit TLS, others STARTTLS)",
    ),
]


def _tls_reason(detail: str) -> tuple[str, str] | None:
    return next(((code, text) for p, code, text in TLS_REASONS if p.search(detail)), None)


def reason_code(step: Step, detail: str = "") -> str:
    """A stable name for the reason, for the panel to translate: the step, or tls_*."""
    tls = _tls_reason(detail) if step is Step.TLS else None
    return tls[0] if tls else step.value


def reason_for(step: Step, target: Target, detail: str = "") -> str:
    template = REASONS.get(step, REASONS[Step.UNKNOWN])
    tls = _tls_reason(detail) if step is Step.TLS else None
    if tls:
        template = tls[1]
    text = template.format(
        host=target.host, port=target.port, sender=target.sender, recipient=target.recipient
    )
    return f"{text} ({detail})" if detail else text


def failure(
    out: RunOutput, target: Target, step: Step | None = None, detail: str | None = None
) -> SendResult:
    """A failed send: the step from the caller (exit code) or from the tool's words."""
    if out.timed_out:
        return timed_out(out, target)
    if out.error:
        reason = f"could not start: {out.error}"
        return SendResult(ok=False, step=Step.UNSUPPORTED, reason=reason, detail=out.error)
    detail = detail if detail is not None else key_line(out.text)
    step = step or step_from_text(out.text)
    return SendResult(
        ok=False,
        step=step,
        reason=reason_for(step, target, detail),
        reason_code=reason_code(step, detail),
        exit_code=out.returncode,
        detail=detail,
    )
