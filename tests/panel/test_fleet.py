"""Several servers in one panel, on one machine: two real Celery workers on Redis with
their own names, queues and tool sets (one PATH without curl and msmtp). Jobs routed to
each arrive only there; a stopped worker makes its server offline (its new jobs are
refused at once, a job already queued fails within seconds, saying why) while the other
goes on."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.urls import reverse
from panel_workers import redis_answers, redis_url, stop_worker, use_broker, worker_process
from playwright.sync_api import expect
from test_browser import page  # noqa: F401  (the Chromium fixture)

from xmailadmin import jobs, services
from xmailadmin.celery import app as celery_app
from xmailadmin.models import ProbeRun, Server, State, TestSend, WorkerHeartbeat

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

HIDDEN = {"curl", "msmtp"}  # not on the second server


def path_without(hidden: set[str], folder: Path) -> str:
    """This machine's PATH with /usr/bin and /bin replaced by a folder of links to all
    their programs but ``hidden``: a server where those are not installed."""
    folder.mkdir()
    for source in ("/usr/bin", "/bin"):
        for entry in os.scandir(source):
            target = folder / entry.name
            if entry.name not in hidden and not target.exists():
                target.symlink_to(entry.path)
    rest = [p for p in os.environ["PATH"].split(":") if p not in ("/usr/bin", "/bin")]
    return ":".join([str(folder), *rest])


def wait_for(predicate, timeout: float = 30.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"waited {timeout} s for {what}")


def final(row):
    def done():
        row.refresh_from_db()
        return not row.active

    wait_for(done, what=f"{row} to end")
    return row


@pytest.fixture
def fleet(transactional_db, tmp_path, settings) -> Iterator[dict]:
    url = redis_url()
    if not redis_answers(url):
        pytest.skip(f"Redis does not answer at {url}")
    settings.XMAILADMIN_HEARTBEAT_SECONDS = 1  # as the workers beat: offline after 3 s
    before = (celery_app.conf.broker_url, dict(celery_app.conf.broker_transport_options or {}))
    use_broker(url)
    tag = os.urandom(3).hex()
    names = {"nord": f"xmailadmin-nord-{tag}", "sued": f"xmailadmin-sued-{tag}"}
    paths = {"nord": os.environ["PATH"], "sued": path_without(HIDDEN, tmp_path / "sued-bin")}
    try:
        with (
            worker_process(names["nord"], _var(tmp_path, "nord"), XMAILADMIN_SERVER_NAME="nord",
                           PATH=paths["nord"]) as nord,
            worker_process(names["sued"], _var(tmp_path, "sued"), XMAILADMIN_SERVER_NAME="sued",
                           PATH=paths["sued"]) as sued,
        ):  # fmt: skip
            wait_for(lambda: Server.objects.filter(name__in=names, last_seen__isnull=False)
                     .count() == 2, what="both servers to register")  # fmt: skip
            yield {"workers": {"nord": nord, "sued": sued},
                   "servers": {n: Server.objects.get(name=n) for n in names}}  # fmt: skip
    finally:
        use_broker(*before)  # the session's worker may be on Redis already


def _var(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / f"var-{name}"
    folder.mkdir()
    return folder


def test_jobs_go_only_to_their_server_and_a_stopped_one_goes_offline(
    fleet, admin_web, account, smtp
):
    workers, servers = fleet["workers"], fleet["servers"]
    nord, sued = servers["nord"], servers["sued"]
    assert (nord.queue, sued.queue) == (workers["nord"].queue, workers["sued"].queue)
    assert Server.local().name not in servers

    # Each server probes its own tool set, on its own worker.
    runs = {name: services.start_probe(None, server=s) for name, s in servers.items()}
    for name, run in runs.items():
        final(run)
        assert run.state == State.PASSED and run.worker.startswith(servers[name].queue)
    found = {n: set(r.results.filter(found=True).values_list("key", flat=True))
             for n, r in runs.items()}  # fmt: skip
    assert found["nord"] >= HIDDEN and not HIDDEN & found["sued"]
    assert "python3" in found["sued"]

    # The page of the chosen server sends its test there, and nowhere else.
    admin_web.get(reverse("dashboard") + f"?server={sued.pk}")
    admin_web.post(reverse("send-one", args=[account.pk, "curl"]))
    there = final(TestSend.objects.get(server=sued, command="curl"))
    assert there.state == State.NOT_INSTALLED and there.worker.startswith(sued.queue)
    admin_web.get(reverse("dashboard") + f"?server={nord.pk}")
    admin_web.post(reverse("send-one", args=[account.pk, "curl"]))
    here = final(TestSend.objects.get(server=nord, command="curl"))
    assert here.state == State.PASSED and here.worker.startswith(nord.queue)
    assert smtp.find("X-Xmailadmin-Test-Id", str(here.test_id))
    assert not smtp.find("X-Xmailadmin-Test-Id", str(there.test_id))

    html = admin_web.get(reverse("servers")).content.decode()
    assert 'id="server-nord" data-online="yes"' in html
    assert 'id="server-sued" data-online="yes"' in html

    # The second server's worker stops: offline, while the first goes on.
    stop_worker(workers["sued"].proc)
    assert not WorkerHeartbeat.objects.filter(server=sued).exists()
    wait_for(lambda: 'id="server-sued" data-online="no"'
             in admin_web.get(reverse("servers")).content.decode(), 10, "sued offline")  # fmt: skip
    html = admin_web.get(reverse("servers")).content.decode()
    assert 'id="server-nord" data-online="yes"' in html
    with pytest.raises(services.NotAccepted, match="Der Server sued ist offline"):
        services.start_tests(account, ["python3"], None, server=sued)

    # A job that was queued for it anyway ends within seconds, saying why.
    stranded = TestSend.objects.create(server=sued, account=account, account_name=account.name,
                                       command="python3", recipient=account.recipient)  # fmt: skip
    jobs.publish(stranded, "xmailadmin.tasks.send_test", send_id=stranded.id)
    started = time.monotonic()
    wait_for(lambda: jobs.expire_stale(Server.objects.get(pk=sued.pk)), 10, "the expiry")
    stranded.refresh_from_db()
    assert stranded.state == State.FAILED and stranded.step == jobs.WORKER_STEP
    assert time.monotonic() - started < 10
    assert "sued" in stranded.explanation and "offline" in stranded.explanation

    (other,) = services.start_tests(account, ["python3"], None, server=nord)
    assert final(other).state == State.PASSED and other.worker.startswith(nord.queue)


def test_a_worker_leaves_the_rows_of_another_server_alone(live_worker, account):
    """A job of server B that reaches server A's queue is not run by A's worker, nor is
    its row changed there (a worker writes only its own server's rows)."""
    local = Server.local()
    other = Server.objects.create(name="anderswo", queue="xmailadmin-anderswo")
    row = TestSend.objects.create(server=other, account=account, account_name=account.name,
                                  command="python3", recipient=account.recipient)  # fmt: skip
    celery_app.signature("xmailadmin.tasks.send_test").apply_async(
        kwargs={"send_id": row.id}, queue=live_worker.queue
    )
    wait_for(lambda: f"{row.id} belongs to server" in live_worker.log_text(), 15, "the refusal")
    row.refresh_from_db()
    assert row.state == State.QUEUED and row.worker == "" and row.started_at is None
    assert ProbeRun.objects.filter(server=other).count() == 0 and local.pk != other.pk


@pytest.mark.browser
def test_an_administrator_chooses_a_server_in_the_browser_and_probes_it(
    fleet, page, live_server, panel_admin  # noqa: F811 - page: test_browser's fixture
):
    """The servers page in Chromium: both servers online; "Show" on one, and the
    overview's probe runs on that server's worker and shows its tool set (before any
    account exists: the table reloads itself all the same)."""
    from test_browser import SHOTS, log_in

    base = live_server.url
    log_in(page, base)
    page.click("#nav-servers")
    expect(page.locator("#server-nord")).to_have_attribute("data-online", "yes")
    expect(page.locator("#server-sued")).to_have_attribute("data-online", "yes")
    page.locator("#server-sued a.button").click()
    expect(page.locator("h1")).to_contain_text("Mail-Befehle von sued")
    page.click("#probe-button")
    run = wait_for(lambda: ProbeRun.objects.filter(state=State.PASSED).first(), 30, "the probe")
    expect(page.locator("#row-python3 td").nth(1)).to_contain_text("ja", timeout=30_000)
    expect(page.locator("#row-curl td").nth(1)).to_contain_text("nicht installiert")
    assert run.server == fleet["servers"]["sued"] and run.worker.startswith(run.server.queue)
    page.screenshot(path=str(SHOTS / "dashboard-second-server.png"), full_page=True)
    page.click("#nav-servers")
    page.screenshot(path=str(SHOTS / "servers.png"), full_page=True)
