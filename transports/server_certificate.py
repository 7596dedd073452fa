"""The server's certificate as the server check reads it: whether a name fits the host
(RFC 6125, IP addresses in the SAN), what it says (names, issuer, chain, expiry, read with
``cryptography`` when it is there), and by whom it is trusted."""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .server_report import CertificateReport


def hostname_matches(
    host: str, dns_names: Sequence[str], addresses: Sequence[str], common_name: str | None
) -> bool:
    """Whether a certificate with these names is one for ``host`` (RFC 6125): an address
    against the IP entries; a name against the DNS entries (a ``*`` as the whole first
    label matches one label), or the common name when there are none, as OpenSSL does."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        names = list(dns_names) or ([common_name] if common_name else [])
        return any(_name_matches(host, name) for name in names)
    return any(_same_address(address, entry) for entry in addresses)


def _name_matches(host: str, pattern: str) -> bool:
    host, pattern = host.lower().rstrip("."), pattern.lower().rstrip(".")
    if not pattern.startswith("*."):
        return "*" not in pattern and pattern == host
    suffix = pattern[2:]
    label, _, rest = host.partition(".")
    return bool(label) and "." in suffix and "*" not in suffix and rest == suffix


def _same_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entry: str) -> bool:
    try:
        return ipaddress.ip_address(entry) == address
    except ValueError:
        return False


def certificate_report(
    chain: list[bytes], host: str, trust: Mapping[str, tuple[bool | None, str | None]]
) -> CertificateReport | None:
    if not chain:
        return None
    trusted, trusted_by, verify_error = _trust(trust)
    unread = CertificateReport(None, (), None, (), None, None, None, trusted, trusted_by,
                               verify_error)  # fmt: skip
    try:
        from cryptography import x509
    except ImportError:
        return unread
    try:
        certs = [x509.load_der_x509_certificate(der) for der in chain]
        return _described(certs, host, trusted, trusted_by, verify_error)
    except ValueError:
        return unread


def _described(
    certs: list[Any],
    host: str,
    trusted: bool | None,
    trusted_by: str | None,
    verify_error: str | None,
) -> CertificateReport:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    leaf = certs[0]
    names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else None
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        ips = [str(n) for n in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns, ips = [], []
    not_after = leaf.not_valid_after_utc
    left = (not_after - dt.datetime.now(dt.UTC)).total_seconds() / 86400
    return CertificateReport(
        subject=common_name,
        san=(*dns, *ips),
        issuer=leaf.issuer.rfc4514_string(),
        chain=tuple(
            {"subject": c.subject.rfc4514_string(), "issuer": c.issuer.rfc4514_string()}
            for c in certs
        ),
        not_after=not_after.isoformat(),
        days_left=math.floor(left),
        hostname_match=hostname_matches(host, dns, ips, common_name),
        trusted=trusted,
        trusted_by=trusted_by,
        verify_error=verify_error,
    )


def _trust(
    trust: Mapping[str, tuple[bool | None, str | None]],
) -> tuple[bool | None, str | None, str | None]:
    """(trusted, by which store, OpenSSL's words): the system's CAs first, then the CA file."""
    system, system_error = trust.get("system", (None, None))
    by_file, file_error = trust.get("ca_file", (None, None))
    if system:
        return True, "system", None
    if by_file:
        return True, "ca_file", None
    if system is None and by_file is None:
        return None, None, None
    return False, None, file_error if by_file is False else system_error
