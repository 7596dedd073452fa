"""SMTP test servers for the server check (transports/server_check.py) that the suite's
own (smtp_server.py) lacks: TLS versions, AUTH in clear, certificates near their end.

One aiosmtpd server (SmtpTestServer's machinery, the same user and password) with one
STARTTLS listener per situation, each on its own port on 127.0.0.1:

- ``capped_12``: TLS 1.2 at most;
- ``only_13``: TLS 1.3 only;
- ``legacy``: also TLS 1.0 and 1.1 (security level 0, as an old server has it);
- ``auth_before_tls``: offers and takes AUTH before STARTTLS;
- ``login_only``: offers AUTH LOGIN only, no PLAIN;
- ``expiring``: a certificate of the test CA that expires tomorrow;
- ``expired``: one that expired twelve hours ago.

Plain module, no pytest, like smtp_server.py.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pki import _LOCALHOST_NAMES, Pki, _key_pem, _make_leaf, _write_pem
from smtp_server import SmtpTestServer, _Listener

LISTENERS = (
    "capped_12", "only_13", "legacy", "auth_before_tls", "login_only", "expiring", "expired",
)  # fmt: skip


def leaf_valid_for(
    pki: Pki, directory: str | os.PathLike[str], days: float, stem: str
) -> tuple[Path, Path]:
    """A certificate for localhost, 127.0.0.1 and ::1 from the test CA (``pki.ca_file``)
    that ends ``days`` days from now (negative: that long ago; it began a day ago):
    (certificate file, key file), named after ``stem``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    ca_key = serialization.load_pem_private_key(pki.ca_key_file.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_file.read_bytes())
    key, cert = _make_leaf(ca_key, ca_cert, "localhost", _LOCALHOST_NAMES, valid_days=days)
    cert_file, key_file = out / f"{stem}.pem", out / f"{stem}-key.pem"
    _write_pem(cert_file, cert.public_bytes(serialization.Encoding.PEM))
    _write_pem(key_file, _key_pem(key), private=True)
    return cert_file, key_file


class DiagnosisServers(SmtpTestServer):
    """The module's listeners on one SmtpTestServer; ``port(name)`` gives a port."""

    def __init__(self, pki: Pki, directory: str | os.PathLike[str], **kwargs: Any) -> None:
        certs = Path(directory, "certs")
        self.expiring = leaf_valid_for(pki, certs, 1, "expiring")
        self.expired = leaf_valid_for(pki, certs, -0.5, "expired")
        super().__init__(pki, Path(directory, "received"), listeners=self._listeners, **kwargs)

    def port(self, name: str) -> int:
        return self.ports[name]

    def _listeners(self, pki: Pki) -> tuple[_Listener, ...]:
        own = (pki.cert_file, pki.key_file)
        tls = ssl.TLSVersion
        return (
            _Listener("capped_12", "starttls", *own, maximum_version=tls.TLSv1_2),
            _Listener("only_13", "starttls", *own, minimum_version=tls.TLSv1_3),
            _Listener("legacy", "starttls", *own, minimum_version=tls.TLSv1, legacy=True),
            _Listener("auth_before_tls", "starttls", *own, auth_before_tls=True),
            _Listener("login_only", "starttls", *own, auth_excluded=("PLAIN",)),
            _Listener("expiring", "starttls", *self.expiring),
            _Listener("expired", "starttls", *self.expired),
        )
