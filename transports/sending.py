"""Sending one message through the preferred order, falling back from one mail command
to the next.

A failure of the way (connect, TLS, AUTH, a timeout, a command missing or broken) goes
on to the next command. A permanent refusal of the message by the server (a 5xx at
MAIL FROM, RCPT TO or DATA) ends the walk: every other command would hear the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .base import SendResult, Target, Transport


def send_in_order(
    transports: Iterable[Transport],
    target: Target,
    message: bytes,
    on_result: Callable[[SendResult], None] | None = None,
) -> list[SendResult]:
    """Every command tried, in order; the last result says how it ended (ok, permanent,
    or every way failed). ``on_result`` hears each one as it comes."""
    results: list[SendResult] = []
    for transport in transports:
        result = transport.send(target, message)
        results.append(result)
        if on_result is not None:
            on_result(result)
        if result.ok or result.permanent:
            break
    return results
