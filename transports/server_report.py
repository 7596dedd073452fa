"""What the server check (server_check.py) found: the report and its certificate part,
JSON both ways (``to_dict`` / ``from_dict``), so that the panel stores a report and words
its findings in the reader's language later."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .base import Mode
from .findings import Finding, Level, worst

TLS_VERSIONS = ("1.0", "1.1", "1.2", "1.3")
# The order findings are reported in; every finding's check is one of these.
CHECKS = ("connect", "banner", "starttls", "tls-versions", "certificate", "auth", "size", "login")
EXPIRY_WARN_DAYS = 14


@dataclass(frozen=True)
class CertificateReport:
    """The server's certificate as sent, and how it fares."""

    subject: str | None  # the common name (CN)
    san: tuple[str, ...]  # DNS names and IP addresses
    issuer: str | None  # RFC 4514, e.g. "CN=R11,O=Let's Encrypt,C=US"
    chain: tuple[Mapping[str, str], ...]  # {"subject", "issuer"} per certificate, as sent
    not_after: str | None  # ISO 8601, UTC
    days_left: int | None  # whole days until not_after; negative once expired
    hostname_match: bool | None
    trusted: bool | None  # None: could not be checked
    trusted_by: str | None  # "system", "ca_file" or None
    verify_error: str | None  # OpenSSL's words when not trusted

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "san": list(self.san),
            "issuer": self.issuer,
            "chain": [dict(c) for c in self.chain],
            "not_after": self.not_after,
            "days_left": self.days_left,
            "hostname_match": self.hostname_match,
            "trusted": self.trusted,
            "trusted_by": self.trusted_by,
            "verify_error": self.verify_error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CertificateReport:
        return cls(
            subject=data.get("subject"),
            san=tuple(data.get("san") or ()),
            issuer=data.get("issuer"),
            chain=tuple(dict(c) for c in data.get("chain") or ()),
            not_after=data.get("not_after"),
            days_left=data.get("days_left"),
            hostname_match=data.get("hostname_match"),
            trusted=data.get("trusted"),
            trusted_by=data.get("trusted_by"),
            verify_error=data.get("verify_error"),
        )


@dataclass(frozen=True)
class ServerReport:
    """Everything the check saw; None where it did not get that far."""

    host: str
    port: int
    mode: Mode
    mode_source: str  # "given", "detected" or "port"
    connect_ms: float | None
    banner: str | None
    starttls: bool | None  # offered (STARTTLS mode); None in SMTPS or when not read
    capabilities_before_tls: tuple[str, ...] | None
    capabilities_after_tls: tuple[str, ...] | None
    auth_mechanisms_before_tls: tuple[str, ...] | None
    auth_mechanisms_after_tls: tuple[str, ...] | None
    size: int | None  # SIZE in bytes, 0: announced without a limit
    flags: Mapping[str, bool] | None  # 8BITMIME, SMTPUTF8, PIPELINING
    tls_version: str | None  # negotiated on the main connection, e.g. "TLSv1.3"
    tls_versions: Mapping[str, bool | None]
    certificate: CertificateReport | None
    login: Mapping[str, Any] | None  # None: not asked for, or no AUTH reached
    findings: tuple[Finding, ...]
    duration_s: float

    @property
    def level(self) -> Level:
        return worst(self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "mode": self.mode.value,
            "mode_source": self.mode_source,
            "connect_ms": self.connect_ms,
            "banner": self.banner,
            "starttls": self.starttls,
            "capabilities": {
                "before_tls": _listed(self.capabilities_before_tls),
                "after_tls": _listed(self.capabilities_after_tls),
            },
            "auth_mechanisms_before_tls": _listed(self.auth_mechanisms_before_tls),
            "auth_mechanisms_after_tls": _listed(self.auth_mechanisms_after_tls),
            "size": self.size,
            "flags": dict(self.flags) if self.flags is not None else None,
            "tls_version": self.tls_version,
            "tls_versions": dict(self.tls_versions),
            "certificate": self.certificate.to_dict() if self.certificate else None,
            "login": dict(self.login) if self.login is not None else None,
            "findings": [f.to_dict() for f in self.findings],
            "duration_s": self.duration_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerReport:
        capabilities = data.get("capabilities") or {}
        certificate = data.get("certificate")
        return cls(
            host=str(data["host"]),
            port=int(data["port"]),
            mode=Mode(data["mode"]),
            mode_source=str(data.get("mode_source") or "given"),
            connect_ms=data.get("connect_ms"),
            banner=data.get("banner"),
            starttls=data.get("starttls"),
            capabilities_before_tls=tupled(capabilities.get("before_tls")),
            capabilities_after_tls=tupled(capabilities.get("after_tls")),
            auth_mechanisms_before_tls=tupled(data.get("auth_mechanisms_before_tls")),
            auth_mechanisms_after_tls=tupled(data.get("auth_mechanisms_after_tls")),
            size=data.get("size"),
            flags=data.get("flags"),
            tls_version=data.get("tls_version"),
            tls_versions={v: (data.get("tls_versions") or {}).get(v) for v in TLS_VERSIONS},
            certificate=CertificateReport.from_dict(certificate) if certificate else None,
            login=data.get("login"),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings") or ()),
            duration_s=float(data.get("duration_s") or 0.0),
        )


def _listed(values: Sequence[str] | None) -> list[str] | None:
    return list(values) if values is not None else None


def tupled(values: Sequence[str] | None) -> tuple[str, ...] | None:
    return tuple(values) if values is not None else None
