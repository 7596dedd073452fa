"""Which of the catalogue's mail commands this server has, and the TLS library each really uses.

``detect(key)`` looks at one command, ``probe_all()`` at all of them in parallel. The TLS
library comes from what the program links (:mod:`transports.tlsinfo`), checked against what
the tool says about itself; for python and perl it comes from the module that does the TLS
(``_ssl``, ``Net::SSLeay``). Every subprocess runs through :func:`transports.run.run` with a
short timeout; a missing or broken tool gives a :class:`Detection` with a note, never an
exception.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .base import Detection
from .catalogue import KEYS
from .run import RunOutput
from .tlsinfo import (
    CachedRun,
    RunFn,
    TlsLink,
    package_version,
    parse_version,
    resolve_tls_library,
    upstream_version,
    vendor_ldd_line,
    verdict,
)
from .versions import (
    VersionInfo,
    identify_mailx,
    parse_assignments,
    parse_curl_version,
    parse_exim_version,
    parse_heirloom_version,
    parse_mailutils_config,
    parse_mailutils_version,
    parse_msmtp_version,
    parse_mutt_version,
    parse_openssl_banner,
    parse_openssl_version,
    parse_snail_version,
)

# A non-root PATH lacks these, but postconf and exim4 live there.
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def which(name: str) -> str | None:
    """``name`` on PATH or in the sbin directories; an absolute path is checked as is."""
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *SBIN_DIRS])
    return shutil.which(name, path=search)


def _locate(names: Sequence[str], executable: str | None) -> str | None:
    if executable:
        return which(executable)
    return next((path for path in map(which, names) if path), None)


def _missing(det: Detection, names: Sequence[str], executable: str | None) -> Detection:
    det.found = False
    det.note = f"{executable} not found" if executable else f"not installed: no {' / '.join(names)}"
    return det


def _add_note(det: Detection, text: str) -> None:
    if text:
        det.note = f"{det.note}; {text}" if det.note else text


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _failure(out: RunOutput) -> str:
    """Why a version command gave nothing usable, in a few words."""
    # Our inline python/perl scripts would swamp the note: show them as "<script>".
    args = ("<script>" if "\n" in a else a for a in out.argv[1:])
    command = " ".join([os.path.basename(out.argv[0]), *args])
    if out.timed_out:
        return f"`{command}` did not answer within {out.duration_s:.0f} s"
    if out.error:
        return f"`{command}` could not start: {out.error}"
    said = _first_line(out.text)[:120]
    if out.returncode == 0:
        return f"`{command}` printed no version: {said}"
    return f"`{command}` failed (exit {out.returncode}): {said}"


def _claim_text(source: str, claim: VersionInfo) -> str:
    version = f"/{claim.library_version}" if claim.library_version else ""
    return f"{source}: {claim.library}{version}"


def _apply_tls(
    det: Detection, link: TlsLink, claim: VersionInfo, claim_evidence: str | None = None
) -> None:
    """Set the library fields from the link, checked against what the tool claims.

    The link wins: it is what is loaded. The tool's own word fills in when the link shows
    nothing (a library built in statically) and is reported when the two disagree.
    """
    det.evidence.extend(link.evidence)
    if claim.library:
        det.evidence.append(claim_evidence or _claim_text("self-report", claim))
    library, version = link.library, link.version
    if claim.library and library in ("none", "unknown"):
        if library == "none":
            _add_note(det, f"links no TLS library but names {claim.library}: built in statically?")
        library, version = claim.library, claim.library_version
    elif claim.library and claim.library.lower() != library.lower():
        _add_note(det, f"links {library} but names {claim.library}; the linked one counts")
    elif version is None:
        version = claim.library_version
    det.tls_library, det.tls_library_version = library, version
    det.tls12, det.tls13 = verdict(library, version)
    _add_note(det, link.note)


# ---------------------------------------------------------------------------------------
# Plain binaries: a version command and the binary's links


@dataclass(frozen=True)
class _Tool:
    names: tuple[str, ...]  # looked up in this order
    version_args: tuple[tuple[str, ...], ...]  # tried in order until a version is read
    parse: Callable[[str], VersionInfo]


_TOOLS = {
    "curl": _Tool(("curl",), (("-V",),), parse_curl_version),
    "msmtp": _Tool(("msmtp",), (("--version",),), parse_msmtp_version),
    "openssl": _Tool(("openssl",), (("version",),), parse_openssl_version),
    "mutt": _Tool(("mutt",), (("-v",),), parse_mutt_version),
    # -:/ keeps s-nail from reading any rc file; -Sverbose adds the "Link:" line.
    "s-nail": _Tool(
        ("s-nail",), (("-:/", "-Sverbose", "-Xversion", "-Xx"), ("-V",)), parse_snail_version
    ),
    "exim": _Tool(("exim4", "exim"), (("-bV",),), parse_exim_version),
}


def _version_of(exe: str, tool: _Tool, run_fn: RunFn) -> tuple[VersionInfo, RunOutput, str]:
    """The first version command that yields a version: (parsed, output, "cmd args")."""
    for args in tool.version_args:
        out = run_fn([exe, *args])
        info = tool.parse(out.text)
        if info.version:
            break
    return info, out, " ".join([os.path.basename(exe), *args])


def _detect_tool(key: str, tool: _Tool, executable: str | None, run_fn: RunFn) -> Detection:
    det = Detection(key=key, found=False)
    exe = _locate(tool.names, executable)
    if exe is None:
        return _missing(det, tool.names, executable)
    det.found, det.path = True, exe
    claim, out, source = _version_of(exe, tool, run_fn)
    det.version = claim.version
    if not claim.version:
        _add_note(det, _failure(out))
    _apply_tls(det, resolve_tls_library(exe, run_fn), claim, _claim_text(source, claim))
    det.ldd_ssl = vendor_ldd_line(exe, run_fn)
    return det


def _detect_exim(key: str, executable: str | None, run_fn: RunFn) -> Detection:
    det = _detect_tool(key, _TOOLS["exim"], executable, run_fn)
    if det.found and det.version is None:
        # -bV reads the configuration and needs the compiled-in user (Debian-exim): if it
        # fails, a send fails the same way.
        det.usable = False
    return det


def _detect_snail(key: str, executable: str | None, run_fn: RunFn) -> Detection:
    wanted = {"snail14": 14, "snail15": 15}[key]
    det = _detect_tool(key, _TOOLS["s-nail"], executable, run_fn)
    parsed = parse_version(det.version)
    if det.found and parsed and parsed[0] != wanted:
        return Detection(key=key, found=False, note=f"installed s-nail is {det.version}")
    if det.found and parsed is None:
        _add_note(det, "s-nail version unknown: cannot tell 14.x from 15.x")
    return det


# ---------------------------------------------------------------------------------------
# python / python3: the TLS is in the _ssl module

# Python 2.7 and 3 alike; one JSON line so nothing else the interpreter prints confuses us.
_PYTHON_SCRIPT = """\
import json, sys
info = {"executable": sys.executable, "version": sys.version.split()[0]}
try:
    import ssl, _ssl
    info["ssl"] = ssl.OPENSSL_VERSION
    info["ssl_file"] = getattr(_ssl, "__file__", "")
except Exception as exc:
    info["ssl_error"] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps(info))
"""


def _python_info(exe: str, run_fn: RunFn) -> tuple[dict[str, str] | None, RunOutput]:
    out = run_fn([exe, "-c", _PYTHON_SCRIPT])
    line = next((x for x in reversed(out.stdout.splitlines()) if x.startswith("{")), "")
    try:
        return json.loads(line), out
    except ValueError:
        return None, out


def _same_file(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and os.path.realpath(a) == os.path.realpath(b)


def _detect_python(key: str, executable: str | None, run_fn: RunFn) -> Detection:
    det = Detection(key=key, found=False)
    exe = _locate((key,), executable)
    if exe is None:
        return _missing(det, (key,), executable)
    det.found, det.path = True, exe
    det.ldd_ssl = vendor_ldd_line(exe, run_fn)
    info, out = _python_info(exe, run_fn)
    if info is None:
        det.usable = False
        _add_note(det, _failure(out))
        return det
    # A pyenv shim or a symlink: the interpreter that really runs is what it reports.
    det.path, det.version = info.get("executable") or exe, info.get("version")
    if not _same_file(exe, det.path):
        _add_note(det, f"via {exe}")
    if key == "python":
        python3 = which("python3")
        other = _python_info(python3, run_fn)[0] if python3 else None
        if other and _same_file(other.get("executable"), det.path):
            _add_note(det, "same interpreter as python3 (python-is-python3)")
    if not info.get("ssl"):
        det.usable = False
        det.tls_library, det.tls12, det.tls13 = "none", "no", "no"
        _add_note(det, f"this Python has no ssl module ({info.get('ssl_error', 'unknown')})")
        return det
    banner = parse_openssl_banner(info["ssl"])
    claim = VersionInfo(det.version, *(banner or (None, None)))
    ssl_file = info.get("ssl_file") or ""
    if os.path.isfile(ssl_file):
        link = resolve_tls_library(ssl_file, run_fn)
    else:
        link = TlsLink("unknown", evidence=["_ssl is built into the interpreter"])
    _apply_tls(det, link, claim, f"_ssl module: {info['ssl']}")
    return det


# ---------------------------------------------------------------------------------------
# perl: the TLS is in Net::SSLeay; the shipped script also needs these modules

_PERL_MODULES = {
    "Net::SSLeay": "libnet-ssleay-perl",
    "IO::Socket::SSL": "libio-socket-ssl-perl",
    "Net::SMTP": "libnet-perl",  # core module; SSL support from 3.0 (perl >= 5.22)
    "Authen::SASL": "libauthen-sasl-perl",
}

# XSLoader and DynaLoader both record the loaded .so in @DynaLoader::dl_shared_objects.
_PERL_SCRIPT = r"""
printf "perl=%vd\n", $^V;
for my $m (qw(Net::SSLeay IO::Socket::SSL Net::SMTP Authen::SASL)) {
    (my $file = "$m.pm") =~ s{::}{/}g;
    my $v = eval { require $file; $m->VERSION };
    print "$m=", (defined $v ? $v : ($INC{$file} ? "0" : "-")), "\n";
}
if ($INC{"Net/SSLeay.pm"}) {
    print "ssleay=", Net::SSLeay::SSLeay_version(0), "\n";
    print "ssleay_so=$_\n" for grep { m{/SSLeay\.so$} } @DynaLoader::dl_shared_objects;
}
"""


def _perl_missing(found: dict[str, str]) -> list[str]:
    """Modules the send script lacks, each with the Debian package that brings it."""
    missing = [f"{m} ({pkg})" for m, pkg in _PERL_MODULES.items() if found.get(m, "-") == "-"]
    smtp = parse_version(found.get("Net::SMTP"))
    if smtp and smtp < (3, 0, 0):
        missing.append(f"Net::SMTP >= 3.0 for SSL, have {found['Net::SMTP']} (libnet-perl)")
    return missing


def _detect_perl(key: str, executable: str | None, run_fn: RunFn) -> Detection:
    det = Detection(key=key, found=False)
    exe = _locate(("perl",), executable)
    if exe is None:
        return _missing(det, ("perl",), executable)
    det.found, det.path = True, exe
    det.ldd_ssl = vendor_ldd_line(exe, run_fn)
    out = run_fn([exe, "-e", _PERL_SCRIPT])
    found = parse_assignments(out.stdout)
    det.version = found.get("perl")
    if det.version is None:
        _add_note(det, _failure(out))
    missing = _perl_missing(found)
    if missing:
        det.usable = False
        _add_note(det, "the send script needs " + ", ".join(missing))
    banner = found.get("ssleay")
    if not banner:
        det.tls_library, det.tls12, det.tls13 = "none", "no", "no"
        return det
    claim = VersionInfo(det.version, *(parse_openssl_banner(banner) or (None, None)))
    module = found.get("ssleay_so", "")
    if os.path.isfile(module):
        link = resolve_tls_library(module, run_fn)
    else:
        link = TlsLink("unknown", note="Net::SSLeay's SSLeay.so was not found")
    _apply_tls(det, link, claim, f"Net::SSLeay {found.get('Net::SSLeay')}: {banner}")
    return det


# ---------------------------------------------------------------------------------------
# postfix: sendmail queues, the smtp daemon does the TLS


def _postfix_params(postconf: str, run_fn: RunFn) -> tuple[dict[str, str], bool]:
    """mail_version, daemon_directory, sendmail_path; and whether there is a main.cf."""
    names = ("daemon_directory", "sendmail_path")
    params = parse_assignments(
        run_fn([postconf, "-d", "mail_version", "config_directory", *names]).stdout
    )
    # Without main.cf every postfix command dies with "fatal" after a 1 s pause: don't ask.
    main_cf = os.path.join(params.get("config_directory") or "/etc/postfix", "main.cf")
    if not os.path.isfile(main_cf):
        return params, False
    configured = run_fn([postconf, *names])
    if configured.returncode == 0:
        params.update(parse_assignments(configured.stdout))
    return params, True


def _postfix_status(postconf: str, run_fn: RunFn) -> str:
    postfix = which("postfix") or os.path.join(os.path.dirname(postconf), "postfix")
    out = run_fn([postfix, "status"])
    if out.returncode == 0:
        return "the postfix master is running"
    if "superuser" in out.text:
        return "postfix status needs root: not checked"
    return "the postfix master is not running (postfix start)"


def _detect_postfix(key: str, executable: str | None, run_fn: RunFn) -> Detection:
    det = Detection(key=key, found=False)
    postconf = which("postconf")
    if postconf is None:
        return _missing(det, ("postconf",), None)
    params, configured = _postfix_params(postconf, run_fn)
    sendmail = _locate((params.get("sendmail_path") or "/usr/sbin/sendmail",), executable)
    if sendmail is None:
        return _missing(det, ("sendmail",), executable)
    det.found, det.path, det.version = True, sendmail, params.get("mail_version")
    if configured:
        _add_note(det, _postfix_status(postconf, run_fn))
    else:
        _add_note(det, "no main.cf: postfix is installed but not configured and not running")
    smtp = os.path.join(params.get("daemon_directory") or "/usr/lib/postfix/sbin", "smtp")
    _apply_tls(det, resolve_tls_library(smtp, run_fn), VersionInfo())
    det.ldd_ssl = vendor_ldd_line(sendmail, run_fn)
    return det


# ---------------------------------------------------------------------------------------
# The three mailx: told apart by what `-V` prints, not by their names

_MAILX = {
    # key: (identity, candidates in order)
    "mailx-bsd": ("bsd", ("bsd-mailx", "mailx", "mail")),
    "mailx-mailutils": ("mailutils", ("mail.mailutils", "mailx", "mail")),
    "mailx-heirloom": ("heirloom", ("heirloom-mailx", "mailx", "nail", "mail")),
}
_MAILX_LABELS = {
    "bsd": "BSD mailx",
    "mailutils": "GNU Mailutils mail",
    "heirloom": "Heirloom mailx",
    "snail": "s-nail",
}


def _find_mailx(
    identity: str, names: Sequence[str], executable: str | None, run_fn: RunFn
) -> tuple[str | None, str, list[str]]:
    """(path, its -V output, what the other candidates turned out to be)."""
    seen: list[str] = []
    for name in [executable] if executable else names:
        path = which(name)
        if path is None:
            continue
        # Same file, same argv: mailx, mail and bsd-mailx share one call.
        out = run_fn([os.path.realpath(path), "-V"])
        found = identify_mailx(out.text)
        if found == identity:
            return path, out.text, seen
        seen.append(f"{name} is {_MAILX_LABELS.get(found or '', 'unrecognised')}")
    return None, "", seen


def _aliases(path: str, names: Sequence[str]) -> list[str]:
    return [n for n in names if n != os.path.basename(path) and _same_file(which(n), path)]


def _detect_mailx(key: str, executable: str | None, run_fn: RunFn) -> Detection:
    identity, names = _MAILX[key]
    det = Detection(key=key, found=False)
    if executable and which(executable) is None:
        return _missing(det, names, executable)
    path, text, seen = _find_mailx(identity, names, executable, run_fn)
    if path is None:
        det.note = f"no {_MAILX_LABELS[identity]}" + (f" ({', '.join(seen)})" if seen else "")
        return det
    det.found, det.path = True, path
    aliases = _aliases(path, ("mailx", "mail"))
    if aliases:
        _add_note(det, f"also run as {', '.join(aliases)}")
    link = resolve_tls_library(path, run_fn)
    det.ldd_ssl = vendor_ldd_line(path, run_fn)
    if identity == "bsd":
        _bsd_mailx(det, path, link, run_fn)
    elif identity == "mailutils":
        det.version = parse_mailutils_version(text).version
        config = run_fn([path, "--show-config-options"])
        claim = VersionInfo(det.version, parse_mailutils_config(config.stdout))
        source = f"{os.path.basename(path)} --show-config-options: WITH_GNUTLS"
        _apply_tls(det, link, claim, source if claim.library == "GnuTLS" else None)
    else:
        det.version = parse_heirloom_version(text).version
        _apply_tls(det, link, VersionInfo(det.version))
    return det


def _bsd_mailx(det: Detection, path: str, link: TlsLink, run_fn: RunFn) -> None:
    # bsd-mailx has no version option; its package says which one it is.
    owned = package_version(path, run_fn)
    if owned:
        det.version = upstream_version(owned[1])
        det.evidence.append(f"dpkg: {owned[0]} {owned[1]}")
    det.evidence.extend(link.evidence)
    det.tls_library, det.tls12, det.tls13 = "none", "no", "no"
    _add_note(
        det,
        "no SMTP and no TLS of its own: it only hands mail to the local /usr/sbin/sendmail",
    )


# ---------------------------------------------------------------------------------------
# Public API

_Detector = Callable[[str, str | None, RunFn], Detection]


def _plain(name: str) -> _Detector:
    def detect_plain(key: str, executable: str | None, run_fn: RunFn) -> Detection:
        return _detect_tool(key, _TOOLS[name], executable, run_fn)

    return detect_plain


_DETECTORS: dict[str, _Detector] = {
    "python": _detect_python,
    "python3": _detect_python,
    "perl": _detect_perl,
    "curl": _plain("curl"),
    "msmtp": _plain("msmtp"),
    "postfix": _detect_postfix,
    "openssl": _plain("openssl"),
    "exim": _detect_exim,
    "snail14": _detect_snail,
    "snail15": _detect_snail,
    "mutt": _plain("mutt"),
    "mailx-heirloom": _detect_mailx,
    "mailx-bsd": _detect_mailx,
    "mailx-mailutils": _detect_mailx,
}


def detect(key: str, executable: str | None = None, *, run_fn: RunFn | None = None) -> Detection:
    """Detect one catalogue command. ``executable`` replaces the PATH lookup.

    For postfix ``executable`` is the sendmail wrapper; for the mailx rows it must still
    identify itself as that mailx; for python it may be any interpreter (a python2 path).

    Raises ValueError only for a key that is not in the catalogue; anything going wrong
    with the command itself ends up in ``note``.
    """
    if key not in _DETECTORS:
        raise ValueError(f"unknown mail command key: {key!r}")
    start = time.monotonic()
    try:
        det = _DETECTORS[key](key, executable, run_fn or CachedRun())
    except Exception as exc:  # a bug here must not take the whole probe page down
        det = Detection(key=key, found=False, usable=False, note=f"detection failed: {exc!r}")
    det.duration_s = round(time.monotonic() - start, 3)
    return det


def probe_all(keys: Sequence[str] | None = None, parallel: bool = True) -> list[Detection]:
    """Detect every key (default: the whole catalogue), in catalogue order.

    In parallel the probe takes about as long as the slowest single detection; identical
    subprocess calls (s-nail for both s-nail rows, python3 for the python row, ldd of a
    shared library, library versions) run once.
    """
    wanted = list(KEYS if keys is None else keys)
    run_fn = CachedRun()
    if not parallel or len(wanted) < 2:
        return [detect(key, run_fn=run_fn) for key in wanted]
    with ThreadPoolExecutor(max_workers=len(wanted), thread_name_prefix="detect") as pool:
        return list(pool.map(lambda key: detect(key, run_fn=run_fn), wanted))
