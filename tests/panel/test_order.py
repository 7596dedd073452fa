"""The preferred order: drag (a posted order), up/down, enable/disable, reset, confirmation."""

from __future__ import annotations

import pytest
from django.urls import reverse

from transports.catalogue import KEYS
from xmailadmin.models import AuditEntry, ProbeResult, ProbeRun, State, TransportSetting
from xmailadmin.order import OrderProposal, current_order, needs_confirmation

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def order() -> list[str]:
    return [s.key for s in TransportSetting.ordered()]


def enabled() -> set[str]:
    return {s.key for s in TransportSetting.ordered() if s.enabled}


def test_the_first_order_is_the_vendors_with_everything_enabled():
    assert order() == list(KEYS)
    assert enabled() == set(KEYS)


def test_a_dragged_order_is_saved(admin_web):
    new = ["curl", *[k for k in KEYS if k != "curl"]]
    response = admin_web.post(reverse("order"), {"order": new, "on": new}, **HTMX)
    assert response.status_code == 200
    assert order() == new
    assert "order_changed" in AuditEntry.objects.values_list("action", flat=True)


def test_an_order_that_is_not_a_permutation_is_refused(admin_web):
    response = admin_web.post(reverse("order"), {"order": ["curl", "curl"], "on": []}, **HTMX)
    assert "Ungültige Reihenfolge" in response.content.decode()
    assert order() == list(KEYS)


def test_up_and_down_work_without_javascript(admin_web):
    response = admin_web.post(reverse("order-move") + "?direction=up", {"key": "perl"})
    assert response.status_code == 302
    assert order()[:3] == ["python", "perl", "python3"]
    admin_web.post(reverse("order-move") + "?direction=down", {"key": "perl"})
    assert order()[:3] == ["python", "python3", "perl"]


def test_up_and_down_answer_htmx_with_the_list(admin_web):
    response = admin_web.post(reverse("order-move"), {"key": "curl", "direction": "up"}, **HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="order-form"')
    assert order().index("curl") == KEYS.index("curl") - 1


def test_a_command_can_be_disabled_and_enabled(admin_web):
    admin_web.post(reverse("order-toggle"), {"key": "msmtp"})
    assert "msmtp" not in enabled()
    admin_web.post(reverse("order-toggle"), {"key": "msmtp"})
    assert "msmtp" in enabled()


def test_an_unsuitable_command_does_not_rise_to_first_place_silently(admin_web):
    new = ["mutt", *[k for k in KEYS if k != "mutt"]]
    response = admin_web.post(reverse("order"), {"order": new, "on": new}, **HTMX)
    html = response.content.decode()
    assert 'id="order-confirm"' in html and "ungeeignet" in html
    assert order() == list(KEYS)  # nothing saved yet
    admin_web.post(reverse("order"), {"order": new, "on": new, "confirm": "1"}, **HTMX)
    assert order()[0] == "mutt"


def test_disabling_everything_above_an_unsuitable_command_asks_too():
    old = current_order()
    new = OrderProposal(old.order, frozenset({"mutt", "mailx-heirloom"}))
    assert needs_confirmation(old, new) == "mutt"


def test_reset_restores_the_vendor_order_limited_to_what_was_found(admin_web):
    admin_web.post(reverse("order-move"), {"key": "curl", "direction": "up"})
    run = ProbeRun.objects.create(state=State.PASSED)
    for key in KEYS:
        ProbeResult.objects.create(run=run, key=key, found=key in {"python3", "curl", "mutt"})
    admin_web.post(reverse("order-reset"))
    assert order() == list(KEYS)
    assert enabled() == {"python3", "curl"}  # mutt is found but unsuitable


def test_reset_without_a_probe_enables_every_suitable_command(admin_web):
    admin_web.post(reverse("order-reset"))
    assert enabled() == {k for k in KEYS if k not in {"mutt", "mailx-heirloom"}}


def test_the_order_page_marks_unsuitable_commands(admin_web):
    html = admin_web.get(reverse("order")).content.decode()
    assert html.count('class="order-item') == len(KEYS)
    assert html.count("unsuitable") >= 2
    assert "Sortable-1.15.7.min.js" in html
