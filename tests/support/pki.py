"""A throw-away PKI for the test suite: two CAs and the server certificates the
loopback SMTP test servers present (right host, wrong host, an untrusted CA)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# --- certificates ---------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files written by make_pki()."""

    directory: Path
    ca_file: Path
    ca_key_file: Path
    cert_file: Path  # localhost, 127.0.0.1, ::1; signed by ca_file
    key_file: Path
    wrong_host_cert_file: Path  # wrong.example; signed by ca_file
    wrong_host_key_file: Path
    other_ca_file: Path  # an unrelated CA that clients are not told to trust
    other_ca_key_file: Path
    other_cert_file: Path  # localhost, 127.0.0.1, ::1; signed by other_ca_file
    other_key_file: Path


_LOCALHOST_NAMES: tuple[x509.GeneralName, ...] = (
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.IPAddress(ipaddress.ip_address("::1")),
)


def make_pki(directory: str | os.PathLike[str]) -> Pki:
    """Create two CAs and three server certificates as PEM files in `directory`."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _make_ca("xmailadmin test CA")
    other_key, other_cert = _make_ca("xmailadmin other (untrusted) CA")
    server = _make_leaf(ca_key, ca_cert, "localhost", _LOCALHOST_NAMES)
    wrong = _make_leaf(ca_key, ca_cert, "wrong.example", (x509.DNSName("wrong.example"),))
    other_server = _make_leaf(other_key, other_cert, "localhost", _LOCALHOST_NAMES)

    pki = Pki(
        directory=out,
        ca_file=out / "ca.pem",
        ca_key_file=out / "ca-key.pem",
        cert_file=out / "server.pem",
        key_file=out / "server-key.pem",
        wrong_host_cert_file=out / "wrong-host.pem",
        wrong_host_key_file=out / "wrong-host-key.pem",
        other_ca_file=out / "other-ca.pem",
        other_ca_key_file=out / "other-ca-key.pem",
        other_cert_file=out / "other-server.pem",
        other_key_file=out / "other-server-key.pem",
    )
    for cert_path, key_path, (key, cert) in (
        (pki.ca_file, pki.ca_key_file, (ca_key, ca_cert)),
        (pki.cert_file, pki.key_file, server),
        (pki.wrong_host_cert_file, pki.wrong_host_key_file, wrong),
        (pki.other_ca_file, pki.other_ca_key_file, (other_key, other_cert)),
        (pki.other_cert_file, pki.other_key_file, other_server),
    ):
        _write_pem(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        _write_pem(key_path, _key_pem(key), private=True)
    return pki


def _make_ca(common_name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _new_key()
    name = _name(common_name)
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_leaf(
    ca_key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    names: Iterable[x509.GeneralName],
    *,
    valid_days: float = 365,
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _new_key()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        _builder(_name(common_name), ca_cert.subject, key.public_key(), valid_days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        # Strict verifiers (OpenSSL's X509_STRICT, Python 3.13+ defaults) require an AKI.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _new_key() -> rsa.RSAPrivateKey:
    # RSA rather than EC: every mail command's TLS library, however old, accepts it.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "xmailadmin tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: rsa.RSAPublicKey, valid_days: float = 365
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # Back-dated a day so a client with a slightly wrong clock still accepts it.
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=valid_days))
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_pem(path: Path, data: bytes, *, private: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
