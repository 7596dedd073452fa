"""What a detection finds, and the steps every mail command's ``detect()`` shares.

A :class:`Detection` says whether a command is on this server and which TLS library it
really uses: what the program links (:mod:`transports.tlsinfo`), checked against what the
tool says about itself. Each command's own way of asking lives in its module
(``Transport.detect``); :func:`detect_binary` is the common case, a version command and
the binary's links. Every subprocess runs through a :data:`~transports.tlsinfo.RunFn`
with a short timeout; a missing or broken tool gives a Detection with a note, never an
exception. :mod:`transports.probe` runs the detections over the catalogue.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .run import RunOutput, locate
from .texts import Text, gettext_noop, texts_to_dicts
from .tlsinfo import CachedRun, RunFn, TlsLink, resolve_tls_library, vendor_ldd_line, verdict
from .versions import VersionInfo

VersionArgs = tuple[tuple[str, ...], ...]  # version commands, tried in order
VersionParser = Callable[[str], VersionInfo]


@dataclass
class Detection:
    key: str
    found: bool
    path: str | None = None
    version: str | None = None
    tls_library: str | None = None  # "OpenSSL", "GnuTLS", "none", "unknown"
    tls_library_version: str | None = None
    tls12: str = "unknown"  # yes / partly / no / unknown
    tls13: str = "unknown"
    evidence: list[str] = field(default_factory=list)  # how the library was found
    ldd_ssl: str = ""  # the vendor's `ldd $(which CMD) | grep ssl`, for comparison
    notes: list[Text] = field(default_factory=list)  # said in the reader's language
    usable: bool = True  # found but missing something the send needs (e.g. a Perl module)
    duration_s: float = 0.0

    @property
    def note(self) -> str:
        """The notes in English, joined: for the CLI, logs and tests."""
        return "; ".join(str(note) for note in self.notes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["notes"], data["note"] = texts_to_dicts(self.notes), self.note
        return data

    def add_note(self, text: Text | str | None) -> None:
        """A sentence of ours (a Text), or a tool's own words (a str, shown as they are)."""
        if text:
            self.notes.append(text if isinstance(text, Text) else tool_words(text))

    def without_tls(self) -> None:
        """No TLS at all: the command cannot reach an SMTPS or STARTTLS server itself."""
        self.tls_library, self.tls12, self.tls13 = "none", "no", "no"


def tool_words(words: str) -> Text:
    """A tool's output as a note: the same words in every language."""
    return Text("%(words)s", {"words": words})


def missing(det: Detection, names: Sequence[str], executable: str | None) -> Detection:
    det.found = False
    if executable:
        det.notes = [Text(gettext_noop("%(path)s not found"), {"path": executable})]
    else:
        names_text = " / ".join(names)
        det.notes = [Text(gettext_noop("not installed: no %(names)s"), {"names": names_text})]
    return det


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def failure(out: RunOutput) -> Text:
    """Why a version command gave nothing usable, in a few words."""
    # Our inline python/perl scripts would swamp the note: show them as "<script>".
    args = ("<script>" if "\n" in a else a for a in out.argv[1:])
    command = " ".join([os.path.basename(out.argv[0]), *args])
    if out.timed_out:
        return Text(
            gettext_noop("`%(command)s` did not answer within %(seconds)s s"),
            {"command": command, "seconds": f"{out.duration_s:.0f}"},
        )
    if out.error:
        return Text(
            gettext_noop("`%(command)s` could not start: %(error)s"),
            {"command": command, "error": out.error},
        )
    said = first_line(out.text)[:120]
    if out.returncode == 0:
        msgid = gettext_noop("`%(command)s` printed no version: %(said)s")
    else:
        msgid = gettext_noop("`%(command)s` failed (exit %(code)s): %(said)s")
    return Text(msgid, {"command": command, "said": said, "code": out.returncode})


def same_file(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and os.path.realpath(a) == os.path.realpath(b)


def claim_text(source: str, claim: VersionInfo) -> str:
    version = f"/{claim.library_version}" if claim.library_version else ""
    return f"{source}: {claim.library}{version}"


def apply_tls(
    det: Detection, link: TlsLink, claim: VersionInfo, claim_evidence: str | None = None
) -> None:
    """Set the library fields from the link, checked against what the tool claims.

    The link wins: it is what is loaded. The tool's own word fills in when the link shows
    nothing (a library built in statically) and is reported when the two disagree.
    """
    det.evidence.extend(link.evidence)
    if claim.library:
        det.evidence.append(claim_evidence or claim_text("self-report", claim))
    library, version = link.library, link.version
    if claim.library and library in ("none", "unknown"):
        if library == "none":
            det.add_note(
                Text(
                    gettext_noop(
                        "links no TLS library but names %(library)s: built in statically?"
                    ),
                    {"library": claim.library},
                )
            )
        library, version = claim.library, claim.library_version
    elif claim.library and claim.library.lower() != library.lower():
        det.add_note(
            Text(
                gettext_noop("links %(linked)s but names %(named)s; the linked one counts"),
                {"linked": library, "named": claim.library},
            )
        )
    elif version is None:
        version = claim.library_version
    det.tls_library, det.tls_library_version = library, version
    det.tls12, det.tls13 = verdict(library, version)
    det.add_note(link.note)


def linked_tls(key: str, binary: str, run_fn: RunFn | None = None) -> Detection:
    """The TLS library ``binary`` links, and the verdicts: for a relay's SMTP client."""
    det = Detection(key=key, found=os.path.exists(binary), path=binary)
    apply_tls(det, resolve_tls_library(binary, run_fn or CachedRun()), VersionInfo())
    return det


def located(
    key: str, names: Sequence[str], executable: str | None, run_fn: RunFn
) -> tuple[Detection, str | None]:
    """The command found by :func:`~transports.run.locate`, with the vendor's ldd line;
    or a Detection that says it is missing, and None."""
    det = Detection(key=key, found=False)
    exe = locate(names, executable)
    if exe is None:
        return missing(det, names, executable), None
    det.found, det.path = True, exe
    det.ldd_ssl = vendor_ldd_line(exe, run_fn)
    return det, exe


def _version_of(
    exe: str, version_args: VersionArgs, parse: VersionParser, run_fn: RunFn
) -> tuple[VersionInfo, RunOutput, str]:
    """The first version command that yields a version: (parsed, output, "cmd args")."""
    for args in version_args:
        out = run_fn([exe, *args])
        info = parse(out.text)
        if info.version:
            break
    return info, out, " ".join([os.path.basename(exe), *args])


def detect_binary(
    key: str,
    names: Sequence[str],
    version_args: VersionArgs,
    parse: VersionParser,
    executable: str | None = None,
    run_fn: RunFn | None = None,
) -> Detection:
    """A plain binary: found by :func:`~transports.run.locate`, asked for its version,
    its TLS library read from its links and checked against what it says."""
    run_fn = run_fn or CachedRun()
    det, exe = located(key, names, executable, run_fn)
    if exe is None:
        return det
    claim, out, source = _version_of(exe, version_args, parse, run_fn)
    det.version = claim.version
    if not claim.version:
        det.add_note(failure(out))
    apply_tls(det, resolve_tls_library(exe, run_fn), claim, claim_text(source, claim))
    return det
