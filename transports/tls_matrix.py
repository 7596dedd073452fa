"""The TLS matrix: per mail command, which TLS version it shares with the account's server.

Pure computation over results already stored: the probe's TLS library and its verdicts
(what the command can speak), the server check's ``tls_versions`` (what the server
accepts) and the version the command negotiated in its last test. Nothing here connects
anywhere, so the grid is drawn as often as a page is rendered and can be tested with
made-up probes (an OpenSSL 1.0.1, a GnuTLS 3.4) against any server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .findings import Level
from .texts import Text, gettext_noop
from .tlsinfo import parse_version

VERSIONS = ("1.0", "1.1", "1.2", "1.3")
# "partly" (OpenSSL 1.0.0: TLS 1.2 only with some builds) counts as able: the last test
# shows whether this build was.
_ABLE = {"yes": True, "partly": True, "no": False}
# TLS 1.1 came with OpenSSL 1.0.1; GnuTLS 3.x and every OpenSSL this product meets speak
# TLS 1.0. Whether a library's policy still allows 1.0/1.1 is its build's business: these
# say only that the code is there.
_LEGACY_FROM = {
    "openssl": {"1.0": (0, 9, 8), "1.1": (1, 0, 1)},
    "gnutls": {"1.0": (3, 0, 0), "1.1": (3, 0, 0)},
}


@dataclass(frozen=True)
class CommandTls:
    """What is stored about one command: its probe row and its last test on the account."""

    key: str
    label: str
    found: bool
    tls_library: str = ""
    tls_library_version: str = ""
    tls12: str = "unknown"  # the probe's verdicts: yes / partly / no / unknown
    tls13: str = "unknown"
    last_tls: str | None = None  # e.g. "TLSv1.3", as the last test reported it
    last_ok: bool | None = None

    def speaks(self) -> dict[str, bool | None]:
        """Per TLS version: whether the command's library can speak it (None: unknown)."""
        spoken: dict[str, bool | None] = {
            "1.2": _ABLE.get(self.tls12),
            "1.3": _ABLE.get(self.tls13),
        }
        name = self.tls_library.strip().lower()
        parsed = parse_version(self.tls_library_version)
        for version in ("1.0", "1.1"):
            since = _LEGACY_FROM.get(name, {}).get(version)
            spoken[version] = None if since is None or parsed is None else parsed >= since
        if name == "none":
            spoken = dict.fromkeys(VERSIONS, False)
        return {v: spoken[v] for v in VERSIONS}

    @property
    def library(self) -> str:
        return " ".join(filter(None, (self.tls_library, self.tls_library_version))) or "?"


@dataclass(frozen=True)
class Cell:
    """One row of the grid: the versions each side has, what they share, the verdict."""

    key: str
    label: str
    level: Level | None  # None: nothing to judge (not installed, server not checked)
    text: Text
    client: Mapping[str, bool | None]
    server: Mapping[str, bool | None] | None
    common: tuple[str, ...]
    last_tls: str | None

    @property
    def best(self) -> str | None:
        return self.common[-1] if self.common else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "level": self.level.value if self.level else None,
            "text": str(self.text),
            "text_data": self.text.to_dict(),
            "client": dict(self.client),
            "server": dict(self.server) if self.server is not None else None,
            "common": list(self.common),
            "last_tls": self.last_tls,
        }


def matrix(
    commands: Iterable[CommandTls], server: Mapping[str, bool | None] | None
) -> list[Cell]:
    """One cell per command against the server's ``tls_versions`` (None: not checked)."""
    return [cell(command, server) for command in commands]


def cell(command: CommandTls, server: Mapping[str, bool | None] | None) -> Cell:
    client = command.speaks()
    if server is not None:
        server = {v: server.get(v) for v in VERSIONS}
    common = tuple(v for v in VERSIONS if client[v] and server and server[v])
    level, text = _verdict(command, client, server, common)
    if command.found and command.last_tls and command.last_ok:
        text = Text(
            gettext_noop("%(verdict)s; the last test used %(version)s"),
            {"verdict": text, "version": command.last_tls},
        )
    return Cell(command.key, command.label, level, text, client, server, common,
                command.last_tls)  # fmt: skip


def _verdict(
    command: CommandTls,
    client: Mapping[str, bool | None],
    server: Mapping[str, bool | None] | None,
    common: tuple[str, ...],
) -> tuple[Level | None, Text]:
    if not command.found:
        return None, Text(gettext_noop("not installed"))
    library = {"library": command.library}
    if client["1.2"] is None and client["1.3"] is None:
        return None, Text(gettext_noop("TLS library %(library)s not judged"), library)
    if server is None:
        return _unchecked(client, library)
    best = common[-1] if common else None
    if best == "1.3":
        return Level.PASS, Text(gettext_noop("works with TLS 1.3"))
    if best == "1.2":
        if server.get("1.3") and client["1.3"] is False:
            return Level.WARN, Text(
                gettext_noop("only TLS 1.2: %(library)s knows no TLS 1.3"), library
            )
        return Level.WARN, Text(gettext_noop("only TLS 1.2"))
    if best is not None:
        return Level.FAIL, Text(
            gettext_noop("only the outdated TLS %(version)s in common"), {"version": best}
        )
    if not any(server.values()):
        return Level.FAIL, Text(gettext_noop("the server accepted no TLS version in the check"))
    if any(client[v] is None for v in VERSIONS if server[v]):
        return None, Text(
            gettext_noop("the server accepts only TLS %(versions)s; not known whether "
                         "%(library)s speaks it"),
            {"versions": _accepted(server), **library},
        )  # fmt: skip
    return Level.FAIL, Text(
        gettext_noop("no version in common: library %(library)s too old (the server accepts "
                     "only TLS %(versions)s)"),
        {"versions": _accepted(server), **library},
    )  # fmt: skip


def _unchecked(client: Mapping[str, bool | None], library: dict) -> tuple[Level | None, Text]:
    """The cell before any server check: what the command's library can speak."""
    spoken = [v for v in ("1.2", "1.3") if client[v]]
    if not spoken:
        return Level.FAIL, Text(gettext_noop("%(library)s speaks neither TLS 1.2 nor 1.3"), library)
    return None, Text(
        gettext_noop("can speak TLS %(versions)s; the server is not checked yet"),
        {"versions": " + ".join(spoken)},
    )


def _accepted(server: Mapping[str, bool | None]) -> str:
    return " + ".join(v for v in VERSIONS if server[v])
