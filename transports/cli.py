"""``python -m transports``: the detection table and one test send, for support over SSH.

    python -m transports probe [--json]
    python -m transports send COMMAND --host H --port P [--mode smtps|starttls]
        --user U --password-file F --from A --to B [--ca-file F] [--timeout S] [--json]
    python -m transports detect-mode --host H --port P [--timeout S] [--json]
    python -m transports check-server --host H --port P [--mode smtps|starttls]
        [--ca-file F] [--user U --password-file F] [--timeout S] [--json]
    python -m transports dns DOMAIN [--nameserver IP[:PORT]] [--smtp-host H]
        [--dkim-selector S]... [--sender A] [--auth-user U] [--timeout S] [--json]

``detect-mode`` exits 0 when the server showed a mode (one connection, no login).
``send`` exits 0 only when the mail went through; the password is read from
a file (``-`` = first line of stdin), never from argv. ``check-server``
sends no mail, ``dns`` only asks DNS; both exit 1 when a finding failed, 0 otherwise
(warnings included), 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .base import Detection, Mode, SendResult, Target, TargetError
from .catalogue import BY_KEY, KEYS, transport_for
from .cert_probe import name_issuer
from .dns_check import check_domain
from .findings import Finding, Level, worst
from .message import build_test_message
from .mode_probe import detect_mode
from .probe import probe_all
from .server_check import check_server

EXIT_USAGE = 2


def _probe(args: argparse.Namespace) -> int:
    rows = probe_all()
    if args.json:
        print(json.dumps([row.to_dict() for row in rows], indent=2, ensure_ascii=False))
    else:
        print(probe_table(rows))
    return 0


def probe_table(rows: Sequence[Detection]) -> str:
    header = ("command", "found", "version", "TLS library", "TLS1.2", "TLS1.3", "status")
    lines = [header]
    for row in rows:
        library = " ".join(filter(None, (row.tls_library, row.tls_library_version))) or "-"
        lines.append(
            (
                row.key,
                "yes" if row.found else "no",
                row.version or "-",
                library,
                row.tls12,
                row.tls13,
                str(BY_KEY[row.key].status_label),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    ]
    notes = [f"  {row.key}: {row.note}" for row in rows if row.note]
    return "\n".join(text + (["", "notes:", *notes] if notes else []))


def read_password(path: str) -> str:
    if path == "-":
        return sys.stdin.readline().rstrip("\r\n")
    with open(path, encoding="utf-8") as fh:
        return fh.readline().rstrip("\r\n")


def _send(args: argparse.Namespace) -> int:
    try:
        password = read_password(args.password_file)
        target = Target(
            host=args.host,
            port=args.port,
            mode=Mode(args.mode) if args.mode else None,
            user=args.user,
            password=password,
            sender=args.sender,
            recipient=args.recipient,
            ca_file=args.ca_file,
            timeout=args.timeout,
        )
    except (OSError, TargetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    message = build_test_message(
        sender=target.sender, recipient=target.recipient, command=args.command
    )
    result = name_issuer(transport_for(args.command).send(target, message), target)
    print(
        json.dumps(result.to_dict(), indent=2, ensure_ascii=False) if args.json else summary(result)
    )
    return 0 if result.ok else 1


def summary(result: SendResult) -> str:
    verdict = "PASSED" if result.ok else f"FAILED at {result.step.value}"
    lines = [f"{result.command}: {verdict} in {result.duration_s:.2f} s: {result.reason}"]
    if result.tls_version:
        lines.append(f"TLS: {result.tls_version}")
    elif result.ok:
        lines.append("TLS: not reported by the tool")
    lines += [f"warning: {w}" for w in result.warnings]
    if result.suggestion:
        lines.append(f"what to do: {result.suggestion}")
    return "\n".join(lines)


def _detect_mode(args: argparse.Namespace) -> int:
    found = detect_mode(args.host, args.port, timeout=args.timeout)
    if args.json:
        print(json.dumps(found.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(f"{found.mode.value if found.mode else 'unknown'}: {found.text}")
    return 0 if found.mode else 1


def _check_server(args: argparse.Namespace) -> int:
    try:
        password = read_password(args.password_file) if args.password_file else None
        report = check_server(
            args.host,
            args.port,
            mode=Mode(args.mode) if args.mode else None,
            ca_file=args.ca_file,
            user=args.user,
            password=password,
            timeout=args.timeout,
        )
    except (OSError, TargetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _report(report, args.json, f"{args.host}:{args.port}")


def _dns(args: argparse.Namespace) -> int:
    try:
        report = check_domain(
            args.domain,
            nameserver=args.nameserver,
            smtp_host=args.smtp_host,
            dkim_selectors=args.dkim_selector,
            envelope_sender=args.sender,
            auth_user=args.auth_user,
            timeout=args.timeout,
        )
    except TargetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _report(report, args.json, report.domain)


def _report(report, as_json: bool, what: str) -> int:
    """Print a check's report (JSON, or one line per finding); 1 if a finding failed."""
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(findings_text(report.findings, what, report.duration_s))
    return 1 if worst(report.findings) is Level.FAIL else 0


_MARK = {Level.PASS: "ok  ", Level.WARN: "WARN", Level.FAIL: "FAIL"}


def findings_text(findings: Sequence[Finding], what: str, duration_s: float) -> str:
    lines = [f"{what}: {worst(findings).value} in {duration_s:.2f} s"]
    lines += [f"  {_MARK[f.level]} {f.check}: {f.text}" for f in findings]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m transports", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="action", required=True)
    probe = sub.add_parser("probe", help="which mail commands exist, with TLS library verdicts")
    probe.add_argument("--json", action="store_true")
    probe.set_defaults(func=_probe)
    send = sub.add_parser("send", help="send one test mail through one command")
    send.add_argument("command", choices=KEYS)
    send.add_argument("--host", required=True)
    send.add_argument("--port", type=int, required=True)
    send.add_argument("--mode", choices=[m.value for m in Mode])
    send.add_argument("--user", required=True)
    send.add_argument("--password-file", required=True, help="file with the password; - = stdin")
    send.add_argument("--from", dest="sender", required=True)
    send.add_argument("--to", dest="recipient", required=True)
    send.add_argument("--ca-file")
    send.add_argument("--timeout", type=float, default=30.0)
    send.add_argument("--json", action="store_true")
    send.set_defaults(func=_send)
    mode = sub.add_parser("detect-mode", help="ask the server whether it speaks STARTTLS or SMTPS")
    mode.add_argument("--host", required=True)
    mode.add_argument("--port", type=int, required=True)
    mode.add_argument("--timeout", type=float, default=10.0)
    mode.add_argument("--json", action="store_true")
    mode.set_defaults(func=_detect_mode)
    check = sub.add_parser("check-server", help="what the server offers; sends no mail")
    check.add_argument("--host", required=True)
    check.add_argument("--port", type=int, required=True)
    check.add_argument("--mode", choices=[m.value for m in Mode])
    check.add_argument("--ca-file")
    check.add_argument("--user")
    check.add_argument("--password-file", help="try the login (AUTH, then QUIT); - = stdin")
    check.add_argument("--timeout", type=float, default=10.0)
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=_check_server)
    dns = sub.add_parser("dns", help="what the sender's domain publishes: MX, SPF, DMARC, DKIM")
    dns.add_argument("domain")
    dns.add_argument("--nameserver", help="IP or IP:PORT; default: the system's resolver")
    dns.add_argument("--smtp-host", help="the account's SMTP server, looked for in SPF")
    dns.add_argument("--dkim-selector", action="append", default=[])
    dns.add_argument("--sender", help="the envelope sender, compared with --auth-user")
    dns.add_argument("--auth-user", help="the SMTP login")
    dns.add_argument("--timeout", type=float, default=5.0)
    dns.add_argument("--json", action="store_true")
    dns.set_defaults(func=_dns)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)
