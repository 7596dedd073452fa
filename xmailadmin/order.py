"""The preferred order of the mail commands on a server, and which of them are used.

The order page proposes a change (``OrderProposal``), checks it and saves it; tasks
and scripts read the commands switched on (``enabled_keys``). Rows are this machine's
(``TransportSetting.ordered``), or another server's when one is given: each server has
its own order, and one can be copied from another (the order page).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from transports.catalogue import BY_KEY, CATALOGUE

from .models import ProbeRun, TransportSetting


def enabled_keys(server=None) -> list[str]:
    return [s.key for s in TransportSetting.ordered(server) if s.enabled]


@dataclass(frozen=True)
class OrderProposal:
    order: list[str]  # every catalogue key, first = used first
    enabled: frozenset[str]

    @property
    def first_used(self) -> str | None:
        return next((k for k in self.order if k in self.enabled), None)


def current_order(server=None) -> OrderProposal:
    """The order of ``server`` (this machine if None)."""
    rows = TransportSetting.ordered(server)
    return OrderProposal([r.key for r in rows], frozenset(r.key for r in rows if r.enabled))


def proposal_from(order: Iterable[str], enabled: Iterable[str]) -> OrderProposal | None:
    """Validate posted keys: a permutation of the catalogue, or None."""
    order = list(order)
    if sorted(order) != sorted(BY_KEY):
        return None
    enabled_set = frozenset(enabled)
    if not enabled_set <= set(BY_KEY):
        return None
    return OrderProposal(order, enabled_set)


def moved(proposal: OrderProposal, key: str, step: int) -> OrderProposal:
    order = list(proposal.order)
    i = order.index(key)
    j = max(0, min(len(order) - 1, i + step))
    order.insert(j, order.pop(i))
    return OrderProposal(order, proposal.enabled)


def toggled(proposal: OrderProposal, key: str) -> OrderProposal:
    return OrderProposal(proposal.order, proposal.enabled ^ {key})


def vendor_recommendation(server=None) -> OrderProposal:
    """The vendor's order, enabled: the suitable commands the last probe (of ``server``,
    this machine if None) found."""
    order = [e.key for e in CATALOGUE]
    run = ProbeRun.latest_finished(server)
    found = None if run is None else {r.key for r in run.results.all() if r.found}
    enabled = frozenset(
        e.key for e in CATALOGUE if not e.unsuitable and (found is None or e.key in found)
    )
    return OrderProposal(order, enabled)


def needs_confirmation(old: OrderProposal, new: OrderProposal) -> str | None:
    """The key of an unsuitable command that the change would make first, if any."""
    first = new.first_used
    if first and BY_KEY[first].unsuitable and first != old.first_used:
        return first
    return None


def save_order(proposal: OrderProposal, server=None) -> None:
    now = timezone.now()
    with transaction.atomic():
        rows = {r.key: r for r in TransportSetting.ordered(server)}
        for position, key in enumerate(proposal.order, start=1):
            row = rows[key]
            row.position = position
            row.enabled = key in proposal.enabled
            row.updated_at = now
        TransportSetting.objects.bulk_update(rows.values(), ["position", "enabled", "updated_at"])
