"""Bad input never reaches a command line: hosts, ports, addresses, line breaks."""

from __future__ import annotations

import pytest
from mailcommands import RECIPIENT, SENDER

from transports.base import Mode, Target, TargetError


def target(**overrides) -> Target:
    values = {
        "host": "mail.example.org",
        "port": 587,
        "user": "u",
        "password": "p",
        "sender": SENDER,
        "recipient": RECIPIENT,
    }
    values.update(overrides)
    return Target(**values)


def test_port_465_means_implicit_tls_and_every_other_port_starttls():
    assert target(port=465).mode is Mode.SMTPS
    for port in (25, 587, 2525, 10465):
        assert target(port=port).mode is Mode.STARTTLS


def test_an_explicit_mode_overrides_the_port_rule():
    assert target(port=587, mode="smtps").mode is Mode.SMTPS
    assert target(port=465, mode=Mode.STARTTLS).mode is Mode.STARTTLS


@pytest.mark.parametrize("port", [0, -1, 65536, 100000, "25"])
def test_it_refuses_ports_out_of_range(port):
    with pytest.raises(TargetError, match="port"):
        target(port=port)


@pytest.mark.parametrize(
    "host",
    [
        "mail.example.org;rm -rf /",
        "$(reboot)",
        "a b",
        "host\nname",
        "-oProxyCommand=x",
        "",
        "a" * 64 + ".example",
        "`id`.example",
        "mail..example",
    ],
)
def test_it_refuses_hosts_with_shell_characters_or_bad_labels(host):
    with pytest.raises(TargetError, match="host"):
        target(host=host)


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("Mail.Example.ORG", "mail.example.org"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_it_accepts_names_ipv4_ipv6_and_idn(given, used):
    assert target(host=given).host == used


def test_an_ipv6_host_goes_into_urls_in_brackets():
    assert target(host="::1").url_host == "[::1]"


@pytest.mark.parametrize("field", ["sender", "recipient"])
@pytest.mark.parametrize("value", ["no-at-sign", "a@b\nRCPT TO:<x@y>", "a b@c.de", "<a@b.de>"])
def test_it_refuses_malformed_addresses(field, value):
    with pytest.raises(TargetError, match="address"):
        target(**{field: value})


@pytest.mark.parametrize("field", ["user", "password"])
def test_it_refuses_line_breaks_in_credentials(field):
    with pytest.raises(TargetError, match="line break"):
        target(**{field: "x\r\nAUTH"})
