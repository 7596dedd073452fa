"""Telling the mode from the server itself: one connection, no login, against the real
loopback listeners (STARTTLS, implicit TLS, plain, silent, refused) and a server that
greets late, as postfix's postscreen does."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest

from transports.base import Mode
from transports.mode_probe import detect_mode


def test_a_starttls_port_is_told_apart_by_its_clear_greeting(smtp):
    found = detect_mode(smtp.host, smtp.starttls_port)

    assert found.mode is Mode.STARTTLS
    assert found.starttls_offered is True
    assert found.banner.startswith("220")
    assert "STARTTLS" in str(found.text)


def test_an_implicit_tls_port_on_any_number_is_smtps(smtp):
    assert smtp.smtps_port != 465  # the number says nothing: the server does
    found = detect_mode(smtp.host, smtp.smtps_port, greeting_wait=0.5)

    assert found.mode is Mode.SMTPS
    assert found.tls_version == "TLSv1.3"
    assert found.banner.startswith("220")
    assert "SMTPS" in str(found.text)


def test_a_port_that_offers_no_starttls_gets_no_mode_and_says_why(smtp):
    found = detect_mode(smtp.host, smtp.plain_port)

    assert found.mode is None
    assert found.starttls_offered is False
    assert "offers no STARTTLS" in str(found.text)


def test_a_silent_server_is_neither_mode(silent_server):
    found = detect_mode(silent_server.host, silent_server.port, timeout=1.0, greeting_wait=0.3)

    assert found.mode is None
    assert silent_server.accepted == 1
    assert "neither greets in clear nor answers a TLS handshake" in str(found.text)


def test_a_refused_port_says_no_connection(refused_port):
    found = detect_mode("127.0.0.1", refused_port, timeout=2.0)

    assert found.mode is None
    assert "no connection to 127.0.0.1" in str(found.text)
    assert "refused" in str(found.text).lower()


@pytest.mark.parametrize("host", ["127.0.0.1;id", "$(id)", "a b", "x\nset"])
def test_a_host_with_shell_characters_is_refused_before_connecting(host):
    found = detect_mode(host, 25)

    assert found.mode is None
    assert "host" in str(found.text).lower()


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_a_port_out_of_range_is_refused(port):
    found = detect_mode("127.0.0.1", port)

    assert found.mode is None
    assert "between 1 and 65535" in str(found.text)


@pytest.fixture
def late_greeter():
    """Greets in clear only after the client spoke or 1 s passed, like postscreen."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1.0)
                with contextlib.suppress(TimeoutError):
                    conn.recv(1024)  # the TLS hello, if any
                conn.sendall(b"220 late.example ESMTP\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def test_a_late_clear_greeting_is_still_starttls(late_greeter):
    found = detect_mode("127.0.0.1", late_greeter, timeout=3.0, greeting_wait=0.3)

    assert found.mode is Mode.STARTTLS
    assert "only after 0.3 s" in str(found.text)
