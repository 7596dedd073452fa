"""The server check's judgement: what its connections saw, made into findings (pass,
warn or fail, each with a sentence as data) and the report. Pure functions of what was
seen; the connections are server_check.py's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .base import Mode
from .findings import Finding, Level
from .server_certificate import certificate_report
from .server_report import (
    CHECKS,
    EXPIRY_WARN_DAYS,
    TLS_VERSIONS,
    CertificateReport,
    ServerReport,
    tupled,
)
from .server_seen import CheckTarget, Run, Seen
from .smtp_replies import auth_mechanisms, keywords_of, size_limit
from .texts import Text, gettext_noop

CONNECTED = gettext_noop("connected to %(host)s:%(port)s in %(ms)s ms")
GREETS = gettext_noop("the server greets: %(banner)s")
TLS_UP = gettext_noop("the server offers STARTTLS, and TLS is up (%(version)s)")
NO_MODERN_TLS = gettext_noop(
    "the server accepts neither TLS 1.2 nor TLS 1.3 (accepted: %(accepted)s): current mail "
    "commands cannot connect"
)
LEGACY_TLS = gettext_noop(
    "the server still accepts %(legacy)s (accepted: %(accepted)s): outdated and unsafe, "
    "they should be switched off"
)
MODERN_TLS = gettext_noop("the server accepts %(accepted)s")
NO_TLS13 = gettext_noop(
    "the server accepts TLS 1.2 but not TLS 1.3: fine for now, though TLS 1.3 is faster and safer"
)
UNREAD_CERTIFICATE = gettext_noop(
    "the certificate's details could not be read (is the Python package cryptography installed?)"
)
WRONG_NAME = gettext_noop(
    "the certificate is for %(names)s, not for %(host)s: use a host name it names, or ask "
    "the provider for the right one"
)
TRUSTED_BY_SYSTEM = gettext_noop(
    "the certificate is trusted by the system's CAs (issued by %(issuer)s)"
)
TRUSTED_BY_CA_FILE = gettext_noop(
    "the certificate is trusted through the account's CA file %(path)s, not by the "
    "system's CAs (issued by %(issuer)s)"
)
TRUST_UNKNOWN = gettext_noop("whether the certificate is trusted could not be checked")
UNTRUSTED = gettext_noop(
    "the certificate is not trusted (%(error)s); it is issued by %(issuer)s: set the "
    "account's CA file to the issuer's certificate"
)
EXPIRED = gettext_noop("the certificate expired on %(date)s")
EXPIRES_SOON = gettext_noop(
    "the certificate expires in %(days)s days (%(date)s): it must be renewed soon"
)
EXPIRES_TODAY = gettext_noop(
    "the certificate expires within a day (%(date)s): it must be renewed at once"
)
VALID_UNTIL = gettext_noop("the certificate is valid until %(date)s")
AUTH_BEFORE_TLS = gettext_noop(
    "the server offers AUTH (%(mechanisms)s) before STARTTLS: a client that does not insist "
    "on TLS sends the password in clear"
)
NO_AUTH = gettext_noop("the server offers no AUTH after TLS: no login is possible on this port")
AUTH_OFFERED = gettext_noop("the server offers AUTH after TLS: %(mechanisms)s")
NO_SIZE = gettext_noop("the server announces no size limit (no SIZE)")
SIZE_UNLIMITED = gettext_noop("the server announces SIZE without a fixed limit")
SIZE_LIMIT = gettext_noop("the server takes messages up to %(mb)s MB (SIZE %(size)s)")
LOGIN_OK = gettext_noop("the server accepted the login as %(user)s")
LOGIN_REFUSED = gettext_noop("the server refused the login as %(user)s: %(reply)s")
LOGIN_NOT_TRIED = gettext_noop(
    "the login was not tried: the server offers neither PLAIN nor LOGIN (offered: %(mechanisms)s)"
)


def report_of(t: CheckTarget, run: Run, source: str, ca_file: str | None, ca_problem: Text | None,
            duration: float) -> ServerReport:  # fmt: skip
    seen = run.seen
    certificate = certificate_report(seen.chain, t.host, run.trust)
    judged = [*seen.findings]
    for judge in _JUDGES:
        judged += judge(t, run, certificate, ca_file, ca_problem)
    judged.sort(key=lambda f: CHECKS.index(f.check))
    capabilities = _capabilities_seen(seen)
    keywords = keywords_of(capabilities or ())
    return ServerReport(
        host=t.host,
        port=t.port,
        mode=t.mode,
        mode_source=source,
        connect_ms=seen.connect_ms,
        banner=seen.banner,
        starttls=seen.starttls,
        capabilities_before_tls=tupled(seen.before_tls),
        capabilities_after_tls=tupled(seen.after_tls),
        auth_mechanisms_before_tls=_mechanisms_or_none(seen.before_tls),
        auth_mechanisms_after_tls=_mechanisms_or_none(seen.after_tls),
        size=size_limit(capabilities),
        flags=None if capabilities is None else {f: f in keywords for f in _FLAGS},
        tls_version=seen.tls_version,
        tls_versions=run.versions,
        certificate=certificate,
        login=seen.login,
        findings=tuple(judged),
        duration_s=round(duration, 3),
    )


_FLAGS = ("8BITMIME", "SMTPUTF8", "PIPELINING")


def _capabilities_seen(seen: Seen) -> list[str] | None:
    """The capabilities that count: after TLS, else (no TLS) before it."""
    return seen.after_tls if seen.after_tls is not None else seen.before_tls


def _mechanisms_or_none(capabilities: list[str] | None) -> tuple[str, ...] | None:
    return None if capabilities is None else tuple(auth_mechanisms(capabilities))


def _say(check: str, level: Level, msgid: str, params: Mapping[str, Any] | None = None,
         details: Mapping[str, Any] | None = None) -> Finding:  # fmt: skip
    # A value the sentence does not use may be None; a Text's parameters never are.
    given = {name: value for name, value in (params or {}).items() if value is not None}
    return Finding(check, level, Text(msgid, given), details or {})


def _judge_dialogue(t: CheckTarget, run: Run, *_: Any) -> list[Finding]:
    """The passes of the steps the main connection got through (it said its failures)."""
    seen, found = run.seen, []
    if seen.connect_ms is not None:
        found.append(_say("connect", Level.PASS, CONNECTED, {**t.where, "ms": seen.connect_ms}))
    if seen.banner and not any(f.check == "banner" for f in seen.findings):
        found.append(_say("banner", Level.PASS, GREETS, {"banner": seen.banner}))
    if t.mode is Mode.STARTTLS and seen.tls_version:
        found.append(_say("starttls", Level.PASS, TLS_UP, {"version": seen.tls_version}))
    return found


def _judge_versions(t: CheckTarget, run: Run, *_: Any) -> list[Finding]:
    versions = run.versions
    if all(v is None for v in versions.values()):
        return []
    legacy = [f"TLS {v}" for v in ("1.0", "1.1") if versions[v]]
    params = {
        "accepted": ", ".join(f"TLS {v}" for v in TLS_VERSIONS if versions[v]) or "-",
        "legacy": " and ".join(legacy),
    }
    if not versions["1.2"] and not versions["1.3"]:
        level, msgid = Level.FAIL, NO_MODERN_TLS
    elif legacy:
        level, msgid = Level.WARN, LEGACY_TLS
    else:
        level, msgid = Level.PASS, MODERN_TLS if versions["1.3"] else NO_TLS13
    return [_say("tls-versions", level, msgid, params, {"tls_versions": dict(versions)})]


def _judge_certificate(t: CheckTarget, run: Run, cert: CertificateReport | None,
                       ca_file: str | None, ca_problem: Text | None) -> list[Finding]:  # fmt: skip
    found = [Finding("certificate", Level.FAIL, ca_problem)] if ca_problem else []
    if cert is None:
        return found
    if cert.days_left is None:
        found.append(_say("certificate", Level.WARN, UNREAD_CERTIFICATE))
    found += _trust_findings(cert, ca_file)
    if cert.hostname_match is False:
        names = ", ".join(cert.san) or cert.subject or "-"
        found.append(_say("certificate", Level.FAIL, WRONG_NAME, {"names": names, "host": t.host},
                          {"san": list(cert.san), "subject": cert.subject}))  # fmt: skip
    return found + _expiry_findings(cert)


def _trust_findings(cert: CertificateReport, ca_file: str | None) -> list[Finding]:
    if cert.trusted_by == "system":
        level, msgid = Level.PASS, TRUSTED_BY_SYSTEM
    elif cert.trusted_by == "ca_file":
        level, msgid = Level.PASS, TRUSTED_BY_CA_FILE
    elif cert.trusted is None:
        level, msgid = Level.WARN, TRUST_UNKNOWN
    elif _expired(cert) and "expired" in str(cert.verify_error):
        return []  # the expiry is the finding, and the CA file no remedy
    else:
        level, msgid = Level.FAIL, UNTRUSTED
    params = {"issuer": cert.issuer or "-", "path": ca_file or "", "error": cert.verify_error}
    details = {"trusted_by": cert.trusted_by, "verify_error": cert.verify_error}
    return [_say("certificate", level, msgid, params, details)]


def _expired(cert: CertificateReport) -> bool:
    return cert.days_left is not None and cert.days_left < 0


def _expiry_findings(cert: CertificateReport) -> list[Finding]:
    if cert.days_left is None:
        return []
    if _expired(cert):
        level, msgid = Level.FAIL, EXPIRED
    elif cert.days_left < EXPIRY_WARN_DAYS:
        level, msgid = Level.WARN, EXPIRES_SOON if cert.days_left else EXPIRES_TODAY
    else:
        level, msgid = Level.PASS, VALID_UNTIL
    params = {"date": (cert.not_after or "")[:10], "days": cert.days_left}
    details = {"not_after": cert.not_after, "days_left": cert.days_left}
    return [_say("certificate", level, msgid, params, details)]


def _judge_auth(t: CheckTarget, run: Run, *_: Any) -> list[Finding]:
    seen, found = run.seen, []
    if early := auth_mechanisms(seen.before_tls):
        params = {"mechanisms": " ".join(early)}
        found.append(_say("auth", Level.WARN, AUTH_BEFORE_TLS, params))
    if seen.after_tls is None:
        return found
    if late := auth_mechanisms(seen.after_tls):
        found.append(_say("auth", Level.PASS, AUTH_OFFERED, {"mechanisms": " ".join(late)}))
    else:
        found.append(_say("auth", Level.FAIL, NO_AUTH))
    return found


def _judge_size(t: CheckTarget, run: Run, *_: Any) -> list[Finding]:
    capabilities = _capabilities_seen(run.seen)
    if capabilities is None:
        return []
    size = size_limit(capabilities)
    if size is None:
        return [_say("size", Level.PASS, NO_SIZE)]
    if size == 0:
        return [_say("size", Level.PASS, SIZE_UNLIMITED)]
    params = {"mb": f"{size / 1_000_000:.1f}", "size": size}
    return [_say("size", Level.PASS, SIZE_LIMIT, params, {"size": size})]


def _judge_login(t: CheckTarget, run: Run, *_: Any) -> list[Finding]:
    login = run.seen.login
    if login is None:
        return []
    if login["ok"]:
        return [_say("login", Level.PASS, LOGIN_OK, {"user": t.user or ""})]
    if login["tried"]:
        params = {"user": t.user or "", "reply": login["reply"]}
        return [_say("login", Level.FAIL, LOGIN_REFUSED, params, {"code": login["code"]})]
    mechanisms = " ".join(auth_mechanisms(run.seen.after_tls)) or "-"
    return [_say("login", Level.FAIL, LOGIN_NOT_TRIED, {"mechanisms": mechanisms})]


_JUDGES: tuple[Callable[..., list[Finding]], ...] = (
    _judge_dialogue,
    _judge_versions,
    _judge_certificate,
    _judge_auth,
    _judge_size,
    _judge_login,
)
