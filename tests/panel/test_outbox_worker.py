"""The outbox with a real Celery worker on a real Redis: a dropped message leaves at once,
one dropped while worker and broker were down leaves once they start, and one whose
worker was killed with SIGKILL mid-send is sent again, not lost and not doubled."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
from outbox_helpers import message, sendmail
from panel_workers import SESSION_QUEUE, worker_process
from private_redis import REDIS_SERVER, PrivateRedis, wait_for

from outbox import spool
from xmailadmin.models import Account, Outbox, OutboxMessage
from xmailadmin.order import current_order, proposal_from, save_order

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def account(transactional_db, smtp_server) -> Account:
    acc = Account(
        name="Testserver", host=smtp_server.host, port=smtp_server.starttls_port,
        username=smtp_server.user, sender="panel@example.org",
        recipient="admin@example.org", ca_file=str(smtp_server.ca_file), is_default=True,
    )  # fmt: skip
    acc.set_password(smtp_server.password)
    acc.save()
    first = ["python3", "curl"]
    save_order(proposal_from(first + [k for k in current_order().order if k not in first], first))
    return acc


@pytest.fixture
def private_redis(tmp_path):
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (scripts/test.sh installs it)")
    server = PrivateRedis(tmp_path / "redis")
    yield server
    server.stop()


@pytest.fixture
def held_smtp(smtp):
    yield smtp
    smtp.hold_data = False


def submit(folder, subject: str) -> str:
    result = sendmail(folder, "-f", "app@example.org", "rcpt@example.net",
                      stdin=message(subject))  # fmt: skip
    assert result.returncode == 0, result.stderr
    return sorted(p.name for p in (folder / "new").iterdir())[-1]


def worker(tmp_path, private_redis, name: str):
    queue = f"{SESSION_QUEUE}-outbox-{name}-{uuid.uuid4().hex[:6]}"
    (tmp_path / name).mkdir()
    return worker_process(queue, tmp_path / name, REDIS_URL=private_redis.url,
                          XMAILADMIN_OUTBOX=str(tmp_path / "outbox"))  # fmt: skip


def test_a_dropped_message_leaves_at_once_through_the_worker(tmp_path, account, smtp,
                                                             private_redis):  # fmt: skip
    private_redis.start()
    folder = tmp_path / "outbox"
    spool.prepare(folder)
    with worker(tmp_path, private_redis, "w1") as w:
        wait_for(lambda: "outbox: watching" in w.log_text(), "the watcher", 20, w.log_text)
        spool_id = submit(folder, "Sofort")
        got = smtp.wait_for(lambda r: "Sofort" in r.raw.decode(), timeout=30)
        wait_for(lambda: OutboxMessage.objects.get(spool_id=spool_id).state == Outbox.DELIVERED,
                 "the row delivered", 10, w.log_text)  # fmt: skip
    row = OutboxMessage.objects.get(spool_id=spool_id)
    assert got.mail_from == account.sender and row.delivered_by == "python3"
    assert [t.tls_version for t in row.tries.all()] == [got.tls_version]
    # The outbox holds the message, never the password: nothing there may leak it.
    for path in folder.rglob("*"):
        if path.is_file():
            assert smtp.password.encode() not in path.read_bytes(), path


def test_a_message_dropped_while_worker_and_broker_are_down_leaves_when_they_start(
    tmp_path, account, smtp, private_redis
):
    folder = tmp_path / "outbox"
    spool.prepare(folder)
    spool_id = submit(folder, "Nachgeholt")  # no broker, no worker: still accepted (0)
    assert (folder / "new" / spool_id).exists()

    private_redis.start()
    with worker(tmp_path, private_redis, "w2") as w:
        smtp.wait_for(lambda r: "Nachgeholt" in r.raw.decode(), timeout=30)
        wait_for(lambda: OutboxMessage.objects.get(spool_id=spool_id).state == Outbox.DELIVERED,
                 "the row delivered", 10, w.log_text)  # fmt: skip
    assert len(smtp.find("Subject", "Nachgeholt")) == 1


def test_a_worker_killed_mid_send_leaves_the_message_to_be_sent_again(
    tmp_path, account, held_smtp, private_redis
):
    private_redis.start()
    folder = tmp_path / "outbox"
    spool.prepare(folder)
    held_smtp.hold_data = True
    started = held_smtp.data_started
    with worker(tmp_path, private_redis, "w3") as w:
        spool_id = submit(folder, "Abgebrochen")
        wait_for(lambda: held_smtp.data_started > started, "the send in DATA", 30, w.log_text)
        assert OutboxMessage.objects.get(spool_id=spool_id).state == Outbox.SENDING
        os.killpg(w.proc.pid, signal.SIGKILL)  # the whole worker, pool and all
        w.proc.wait()
    time.sleep(0.5)
    held_smtp.hold_data = False
    assert held_smtp.find("Subject", "Abgebrochen") == []  # the server never took it
    assert (folder / "cur" / spool_id).exists()  # not lost

    with worker(tmp_path, private_redis, "w4") as w:
        got = held_smtp.wait_for(lambda r: "Abgebrochen" in r.raw.decode(), timeout=30)
        wait_for(lambda: OutboxMessage.objects.get(spool_id=spool_id).state == Outbox.DELIVERED,
                 "the row delivered", 10, w.log_text)  # fmt: skip
    row = OutboxMessage.objects.get(spool_id=spool_id)
    assert row.attempts == 2 and row.message_id in got.raw.decode()  # the same message
    assert len(held_smtp.find("Subject", "Abgebrochen")) == 1
