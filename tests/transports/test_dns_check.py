"""The sender-domain DNS check against a nameserver on loopback with the zone in the
test (tests/support/dns_server.py); never the internet."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dns_server import DnsTestServer, SilentDnsServer, txt

from transports.base import TargetError
from transports.dns_check import CHECKS, DnsReport, check_domain, parse_nameserver
from transports.findings import Level

REPO = Path(__file__).resolve().parents[2]
D = "example.test"


def dkim_key(bits: int) -> str:
    if bits < 1024:  # cryptography makes no such keys any more; a modulus of that size will do
        public = rsa.RSAPublicNumbers(65537, (1 << (bits - 1)) | 0xF1).public_key()
    else:
        public = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def good_zone(extra: dict | None = None) -> dict:
    zone = {
        (D, "MX"): ["10 mx.example.test."],
        ("mx.example.test", "A"): ["127.0.0.2"],
        (D, "TXT"): [txt("v=spf1 include:_spf.provider.test -all")],
        ("_spf.provider.test", "TXT"): [txt("v=spf1 ip4:127.0.5.0/24 -all")],
        ("smtp.provider.test", "A"): ["127.0.5.5"],
        (f"_dmarc.{D}", "TXT"): [txt("v=DMARC1; p=reject; rua=mailto:d@example.test")],
    }
    zone.update(extra or {})
    return zone


def run(zone, **kw) -> tuple[DnsReport, DnsTestServer]:
    kw.setdefault("smtp_host", "smtp.provider.test")
    with DnsTestServer(zone) as server:
        return check_domain(kw.pop("domain", D), nameserver=server.nameserver, **kw), server


def levels(report: DnsReport, check: str) -> list[Level]:
    return [f.level for f in report.findings if f.check == check]


def texts(report: DnsReport, check: str) -> str:
    return " | ".join(str(f.text) for f in report.findings if f.check == check)


def test_a_good_domain_passes_every_check_and_asks_side_by_side():
    key = dkim_key(2048)
    zone = good_zone({(f"mail._domainkey.{D}", "TXT"): [txt(f"v=DKIM1; k=rsa; p={key}")]})
    report, server = run(
        zone, dkim_selectors=["mail"], auth_user=f"a@{D}", envelope_sender=f"a@{D}"
    )
    assert report.level == Level.PASS, [str(f.text) for f in report.findings]
    assert {f.check for f in report.findings} == set(CHECKS)
    assert "2048 bits" in texts(report, "dkim")  # the 2048-bit key came over TCP
    assert "authorises the SMTP server smtp.provider.test (127.0.5.5)" in texts(report, "spf")
    assert report.lookups == len(set(server.queries))
    assert report.rounds < report.lookups  # asked side by side, not one after the other


def test_json_has_findings_with_check_level_text_and_rebuilds():
    report, _ = run(good_zone())
    data = json.loads(json.dumps(report.to_dict()))
    assert all({"check", "level", "text"} <= f.keys() for f in data["findings"])
    assert {f["level"] for f in data["findings"]} <= {"pass", "warn", "fail"}
    assert DnsReport.from_dict(data).findings == report.findings


def test_spf_over_ten_lookups_fails():
    includes = " ".join(f"include:s{i}.provider.test" for i in range(11))
    zone = good_zone({(D, "TXT"): [txt(f"v=spf1 {includes} -all")]})
    zone.update({(f"s{i}.provider.test", "TXT"): [txt("v=spf1 -all")] for i in range(11)})
    report, _ = run(zone)
    assert Level.FAIL in levels(report, "spf")
    assert "needs 11 DNS lookups, more than the 10 allowed" in texts(report, "spf")


def test_spf_lookups_count_nested_includes():
    zone = good_zone(
        {
            ("_spf.provider.test", "TXT"): [txt("v=spf1 include:b.provider.test a mx -all")],
            ("b.provider.test", "TXT"): [txt("v=spf1 ip4:127.0.5.5 -all")],
        }
    )
    report, _ = run(zone)
    assert "needs 4 of at most 10" in texts(report, "spf")


@pytest.mark.parametrize(("ending", "words"), [("+all", "»+all«"), ("?all", "»?all«")])
def test_spf_plus_all_and_neutral_all_are_warned(ending, words):
    report, _ = run(good_zone({(D, "TXT"): [txt(f"v=spf1 ip4:127.0.5.5 {ending}")]}))
    assert Level.WARN in levels(report, "spf") and words in texts(report, "spf")


def test_spf_not_naming_the_server_is_warned_with_its_address():
    report, _ = run(good_zone({(D, "TXT"): [txt("v=spf1 ip4:127.9.9.9 -all")]}))
    assert "does not authorise the SMTP server smtp.provider.test (127.0.5.5)" in texts(
        report, "spf"
    )


def test_spf_include_of_the_provider_counts_when_the_address_differs():
    zone = good_zone({("_spf.provider.test", "TXT"): [txt("v=spf1 ip4:127.8.0.0/16 -all")]})
    report, _ = run(zone)
    assert "includes _spf.provider.test, which looks like the provider" in texts(report, "spf")
    assert Level.WARN not in levels(report, "spf")


def test_two_spf_records_fail_and_none_warns():
    two, _ = run(good_zone({(D, "TXT"): [txt("v=spf1 -all"), txt("v=spf1 ~all")]}))
    assert levels(two, "spf") == [Level.FAIL]
    none, _ = run(good_zone({(D, "TXT"): [txt("google-site-verification=x")]}))
    assert levels(none, "spf") == [Level.WARN] and "no SPF record" in texts(none, "spf")


def test_include_loop_ends():
    zone = good_zone({("_spf.provider.test", "TXT"): [txt("v=spf1 include:example.test -all")]})
    report, _ = run(zone)
    assert report.lookups < 20


def test_dmarc_policy_none_warns_missing_warns_and_parent_is_used():
    none, _ = run(good_zone({(f"_dmarc.{D}", "TXT"): [txt("v=DMARC1; p=none")]}))
    assert levels(none, "dmarc") == [Level.WARN] and "»none«" in texts(none, "dmarc")
    zone = good_zone()
    del zone[(f"_dmarc.{D}", "TXT")]
    missing, _ = run(zone)
    assert "no DMARC record" in texts(missing, "dmarc")
    sub = dict(zone)
    sub[("mail.example.test", "MX")] = ["10 mx.example.test."]
    sub[(f"_dmarc.{D}", "TXT")] = [txt("v=DMARC1; p=reject; sp=quarantine")]
    parent, _ = run(sub, domain="mail.example.test")
    assert "_dmarc.example.test is »quarantine«" in texts(parent, "dmarc")


def test_dmarc_alignment_with_the_account_domain():
    report, _ = run(good_zone(), auth_user="a@provider.test")
    assert "is not the account's domain provider.test" in texts(report, "dmarc")
    aligned, _ = run(good_zone(), auth_user="a@mail.example.test")
    assert "fits the account's domain" in texts(aligned, "dmarc")


def test_dkim_short_key_missing_selector_and_broken_key_fail():
    zone = good_zone(
        {
            (f"short._domainkey.{D}", "TXT"): [txt(f"v=DKIM1; p={dkim_key(512)}")],
            (f"broken._domainkey.{D}", "TXT"): [txt("v=DKIM1; p=bm90IGEga2V5")],
            (f"gone._domainkey.{D}", "TXT"): [txt("v=DKIM1; p=")],
        }
    )
    report, _ = run(zone, dkim_selectors=["short", "absent", "broken", "gone"])
    assert levels(report, "dkim") == [Level.FAIL] * 4
    words = texts(report, "dkim")
    assert "only 512 bits" in words and "no DKIM key for selector »absent«" in words
    assert "no RSA public key" in words and "revoked" in words


def test_dkim_through_a_cname_as_providers_publish_it():
    zone = good_zone(
        {
            (f"s1._domainkey.{D}", "CNAME"): ["s1.dkim.provider.test."],
            ("s1.dkim.provider.test", "TXT"): [txt(f"v=DKIM1; p={dkim_key(1024)}")],
        }
    )
    report, _ = run(zone, dkim_selectors=["s1"])
    assert levels(report, "dkim") == [Level.PASS] and "1024 bits" in texts(report, "dkim")


def test_mta_sts_and_tls_rpt_reported_when_present():
    zone = good_zone(
        {
            (f"_mta-sts.{D}", "TXT"): [txt("v=STSv1; id=20261203")],
            (f"_smtp._tls.{D}", "TXT"): [txt("v=TLSRPTv1")],
        }
    )
    report, _ = run(zone)
    words = texts(report, "mta-sts")
    assert "MTA-STS published" in words and "id=20261203" in words
    assert "TLS-RPT record" in words and "not valid" in words  # no rua=


def test_mx_missing_null_and_nxdomain():
    zone = good_zone()
    del zone[(D, "MX")]
    assert "has no MX record" in texts(run(zone)[0], "mx")
    null, _ = run(good_zone({(D, "MX"): ["0 ."]}))
    assert "null MX" in texts(null, "mx")
    gone, _ = run(good_zone(), domain="nowhere.test")
    assert levels(gone, "mx") == [Level.FAIL] and "does not exist" in texts(gone, "mx")


def test_sender_other_than_the_login_is_warned():
    report, _ = run(good_zone(), envelope_sender=f"info@{D}", auth_user=f"a@{D}")
    assert levels(report, "sender") == [Level.WARN]
    assert "not the login a@example.test" in texts(report, "sender")


def test_servfail_is_a_failed_finding_with_the_reason():
    with DnsTestServer(good_zone(), rcodes={f"_dmarc.{D}": "SERVFAIL"}) as server:
        report = check_domain(D, nameserver=server.nameserver)
    assert levels(report, "dmarc") == [Level.FAIL]
    assert "SERVFAIL" in texts(report, "dmarc")


def test_a_silent_nameserver_ends_within_its_time_limit_with_the_reason():
    with SilentDnsServer() as server:
        started = time.monotonic()
        report = check_domain(D, nameserver=server.nameserver, timeout=1.0)
        took = time.monotonic() - started
    assert took < 3.0
    assert report.level == Level.FAIL
    assert "no answer from the nameserver within 1 s" in texts(report, "mx")


@pytest.mark.parametrize(
    "bad", ["exa mple.test", "x;rm -rf /", "localhost", "127.0.0.1", "$(id).test", ""]
)
def test_bad_domains_are_refused_before_any_query(bad):
    with pytest.raises(TargetError):
        check_domain(bad, nameserver="127.0.0.1:9")


def test_bad_selector_and_nameserver_are_refused():
    with pytest.raises(TargetError):
        check_domain(D, nameserver="127.0.0.1:9", dkim_selectors=["a b"])
    for bad in ("dns.example", "127.0.0.1:0", "127.0.0.1:70000", "[::1"):
        with pytest.raises(TargetError):
            parse_nameserver(bad)
    assert parse_nameserver("[::1]:5353") == ("::1", 5353)
    assert parse_nameserver("127.0.0.1") == ("127.0.0.1", 53)


def test_cli_prints_json_findings_and_exits_by_the_worst_level():
    with DnsTestServer(good_zone()) as server:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "transports",
                "dns",
                D,
                "--nameserver",
                server.nameserver,
                "--smtp-host",
                "smtp.provider.test",
                "--json",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    data = json.loads(done.stdout)
    assert data["domain"] == D
    assert {f["check"] for f in data["findings"]} == set(CHECKS) - {"sender"}
    assert done.returncode == 0  # warnings (no DKIM selector) only
    bad = subprocess.run(
        [sys.executable, "-m", "transports", "dns", "x;y"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "not a valid domain name" in bad.stderr
