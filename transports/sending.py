"""Sending messages through the preferred order, falling back from one mail command to
the next, several mail commands at once.

A failure of the way (connect, TLS, AUTH, a timeout, a command missing or broken) goes
on to the next command. A permanent refusal of the message by the server (a 5xx at
MAIL FROM, RCPT TO or DATA) ends the walk: every other command would hear the same.

The mail commands run in threads (each is a process waiting on the network); every
result is handed to ``on_result`` in the caller's thread, so the caller's bookkeeping
(a database, say) never runs concurrently, and an item's result is in the caller's
hands before anything more is sent for that item.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from .base import SendResult, Target, Transport


@dataclass
class Item:
    """One message for one recipient (``target.recipient``); ``tag`` is the caller's."""

    tag: Any
    target: Target
    message: bytes


# on_result(item, result, final): final when the walk for that item ends with it.
OnResult = Callable[[Item, SendResult, bool], None]


def send_all_in_order(
    items: Sequence[Item],
    keys: Sequence[str],
    make: Callable[[str], Transport],
    on_result: OnResult,
    *,
    workers: int = 4,
    batch: int = 50,
) -> None:
    """Each item through the commands named by ``keys`` in order, until one delivers it
    or the server refuses it for good; up to ``workers`` commands at once. A command that
    carries many messages over one connection (``carries_many``) gets the items waiting
    for it shared among the workers, up to ``batch`` per connection. ``make`` builds a
    command's transport, in the caller's thread, once per run of it."""
    if not keys:
        return
    ready: list[list[Item]] = [list(items)] + [[] for _ in keys[1:]]
    running: dict[Future, tuple[int, list[Item]]] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="send") as pool:
        while running or any(ready):
            while len(running) < max(1, workers) and any(ready):
                step = next(i for i, waiting in enumerate(ready) if waiting)
                transport = make(keys[step])
                share = _share(len(ready[step]), workers - len(running), batch, transport)
                taken, ready[step] = ready[step][:share], ready[step][share:]
                running[pool.submit(_send, transport, taken)] = (step, taken)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                step, taken = running.pop(future)
                for item, result in zip(taken, future.result(), strict=True):
                    final = result.ok or result.permanent or step + 1 == len(keys)
                    on_result(item, result, final)
                    if not final:
                        ready[step + 1].append(item)


def _share(waiting: int, free: int, batch: int, transport: Transport) -> int:
    """How many items one run of ``transport`` takes: one, or for a command that carries
    many, an even share of what waits among the free workers (more connections at once
    beat one long one), at most ``batch``."""
    if not transport.carries_many:
        return 1
    return max(1, min(batch, math.ceil(waiting / max(1, free))))


def _send(transport: Transport, items: list[Item]) -> list[SendResult]:
    if len(items) == 1:
        item = items[0]
        return [transport.send(item.target, item.message)]
    first = items[0].target
    pairs = [(item.target.recipient, item.message) for item in items]
    return transport.send_many(first, pairs)
