"""The three mailx: told apart by what ``-V`` prints, each with its own TLS story."""

from __future__ import annotations

import pytest
from detecting import detect_stand_in, need

from transports.mailx import identify_mailx
from transports.probe import detect
from transports.run import run


def test_mailutils_vendor_line_disagrees(probe):
    row = probe["mailx-mailutils"]
    if not row.found:
        pytest.skip(row.note)
    assert row.path.endswith("mail.mailutils")
    assert "libssl" in row.ldd_ssl  # the vendor's check would say OpenSSL
    assert row.tls_library == "GnuTLS"
    assert any("WITH_GNUTLS" in e for e in row.evidence)


def test_bsd_mailx_has_no_tls(probe):
    need("bsd-mailx")
    row = probe["mailx-bsd"]
    assert row.found and row.path.endswith("bsd-mailx")
    assert (row.tls_library, row.tls12, row.tls13) == ("none", "no", "no")
    assert "sendmail" in row.note
    assert row.version  # from its package: bsd-mailx prints no version


def test_heirloom_stand_in(tmp_path):
    row = detect_stand_in(tmp_path, "mailx-heirloom", "12.5 7/5/10", name="mailx")
    assert row.found and row.version == "12.5"
    assert row.tls_library == "unknown"
    assert "script" in row.note


def test_heirloom_key_rejects_another_mailx():
    row = detect("mailx-heirloom", need("bsd-mailx"))
    assert not row.found
    assert "BSD mailx" in row.note


def test_identify_real_mailx_outputs():
    out = run([need("bsd-mailx"), "-V"], timeout=5)
    assert identify_mailx(out.text) == "bsd"
    out = run([need("mail.mailutils"), "-V"], timeout=5)
    assert identify_mailx(out.text) == "mailutils"
    out = run([need("s-nail"), "-V"], timeout=5)
    assert identify_mailx(out.text) == "snail"
    assert identify_mailx("12.4 7/29/08") == "heirloom"
