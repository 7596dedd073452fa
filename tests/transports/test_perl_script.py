"""perl's own facts: the TLS is in Net::SSLeay, and the send script needs its modules."""

from __future__ import annotations

from detecting import detect_stand_in, need


def test_perl_row(probe):
    row = probe["perl"]
    need("perl")
    assert row.found and row.version.startswith("5.")
    assert row.tls_library == "OpenSSL"
    assert any(e.startswith("readelf -d SSLeay.so: libssl") for e in row.evidence)
    assert any(e.startswith("Net::SSLeay ") for e in row.evidence)
    assert row.usable, row.note


def test_perl_missing_modules_stand_in(tmp_path):
    row = detect_stand_in(
        tmp_path,
        "perl",
        "perl=5.16.3\nNet::SSLeay=1.55\nIO::Socket::SSL=-\nNet::SMTP=2.31\nAuthen::SASL=-\n"
        "ssleay=OpenSSL 1.0.2k-fips  26 Jan 2017",
    )
    assert row.found and row.version == "5.16.3"
    assert not row.usable
    for text in ("libio-socket-ssl-perl", "libauthen-sasl-perl", "Net::SMTP >= 3.0"):
        assert text in row.note
    assert (row.tls_library, row.tls_library_version) == ("OpenSSL", "1.0.2k-fips")
    assert (row.tls12, row.tls13) == ("yes", "no")
