"""xmail-sendmail as applications call it: sendmail's flags and exit codes, the message
kept byte for byte in the outbox, durable before it says 0, and usable by any local user
who may drop a message but not read anyone's."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from outbox.spool import prepare, read, write_admin_address

REPO = Path(__file__).resolve().parents[2]
ENTRY = REPO / "bin" / "xmail-sendmail"
MESSAGE = (
    "From: Anwendung <app@example.org>\n"
    "To: Empfänger <rcpt@example.net>\n"
    "Cc: cc@example.net\n"
    "Bcc: hidden@example.net\n"
    "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n"
    "X-Long: first part\n"
    "\tcontinued\n"
    "\n"
    "Grüße, 8-bit body\n"
    "..a dot-stuffed looking line\n"
).encode()


@pytest.fixture
def outbox(tmp_path) -> Path:
    root = tmp_path / "outbox"
    prepare(root)
    return root


def send(outbox: Path, *args: str, stdin: bytes = MESSAGE, user: str | None = None, entry=ENTRY):
    env = {**os.environ, "XMAILADMIN_OUTBOX": str(outbox)}
    argv = [sys.executable, str(entry), *args]
    if user:  # another user runs the system's python3 on an installed copy
        argv = ["runuser", "-u", user, "--", "/usr/bin/python3", str(entry), *args]
    return subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=30)


def installed_copy(folder: Path) -> Path:
    """bin/ and outbox/ where every user may read them, as an install puts them."""
    for name in ("bin", "outbox"):
        shutil.copytree(REPO / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, 0o755)
    return folder / "bin" / "xmail-sendmail"


def only_message(outbox: Path):
    (path,) = list((outbox / "new").iterdir())
    assert list((outbox / "tmp").iterdir()) == []  # nothing half-written left
    return read(path)


def test_t_takes_recipients_from_the_headers_and_removes_bcc(outbox):
    result = send(outbox, "-t", "-i", "-f", "bounces@example.org")

    assert result.returncode == 0, result.stderr
    envelope, kept = only_message(outbox)
    assert envelope.sender == "bounces@example.org"
    assert envelope.recipients == ["rcpt@example.net", "cc@example.net", "hidden@example.net"]
    assert b"Bcc:" not in kept and b"hidden@example.net" not in kept
    head, _, body = kept.partition(b"\n\n")
    assert body == "Grüße, 8-bit body\n..a dot-stuffed looking line\n".encode()
    assert b"X-Long: first part\n\tcontinued" in head
    assert b"Date: " in head and b"Message-ID: <" in head  # added when missing


def test_a_message_with_date_and_message_id_is_kept_byte_for_byte(outbox):
    message = (
        b"From: a@example.org\r\nTo: b@example.net\r\nDate: Tue, 1 Dec 2026 10:00:00 +0100\r\n"
        b"Message-ID: <x@example.org>\r\nSubject: \xc3\xa4 raw utf-8\r\n\r\nbody\r\n"
    )
    result = send(outbox, "-oi", "--", "b@example.net", stdin=message)

    assert result.returncode == 0, result.stderr
    envelope, kept = only_message(outbox)
    assert kept == message
    assert envelope.recipients == ["b@example.net"]


def test_without_i_a_line_of_one_dot_ends_the_message(outbox):
    message = b"To: b@example.net\n\nbefore\n.\nafter\n"
    assert send(outbox, "b@example.net", stdin=message).returncode == 0

    assert only_message(outbox)[1].endswith(b"\n\nbefore\n")


@pytest.mark.parametrize("flag", ["-odi", "-odb", "-oem", "-oee", "-v"])
def test_flags_every_sendmail_accepts_are_ignored(outbox, flag):
    assert send(outbox, flag, "-t").returncode == 0


@pytest.mark.parametrize(
    ("args", "stdin", "code", "words"),
    [
        (["-X", "-t"], MESSAGE, 64, "unknown option -X"),
        (["-f"], MESSAGE, 64, "-f needs a value"),
        ([], b"To: b@example.net\n\nno recipient named\n", 65, "no recipient"),
        (["b@example.net"], b"To b@example.net\n\nbody\n", 65, "header line without a colon"),
        (["not an@address"], MESSAGE, 65, "not an address"),
        (["root"], MESSAGE, 65, "root: a local user, and no admin address is set"),
    ],
)
def test_bad_flags_and_bad_messages_get_their_exit_code_and_nothing_is_kept(
    outbox, args, stdin, code, words
):
    result = send(outbox, *args, stdin=stdin)

    assert result.returncode == code
    assert words in result.stderr.decode()
    assert list((outbox / "new").iterdir()) == []


def test_an_outbox_that_cannot_be_written_accepts_nothing(tmp_path):
    result = send(tmp_path / "missing", "-t")

    assert result.returncode == 73
    assert "nothing was accepted" in result.stderr.decode()


def test_a_message_over_the_size_limit_is_refused(outbox, monkeypatch):
    monkeypatch.setenv("XMAILADMIN_MAX_MESSAGE_BYTES", "1000")
    result = send(outbox, "-t", stdin=MESSAGE + b"x" * 2000)

    assert result.returncode == 65 and "larger than 1000 bytes" in result.stderr.decode()


@pytest.fixture
def shared_folder():
    """A folder every user may enter (pytest's own tmp folders are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="xmail-sendmail-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder)


def test_any_local_user_can_drop_a_message_but_read_none(shared_folder):
    if os.geteuid() != 0 or not shutil.which("runuser"):
        pytest.skip("needs root and runuser to act as another user (CI runs as root)")
    outbox = shared_folder / "outbox"
    prepare(outbox)
    entry = installed_copy(shared_folder / "app")
    assert send(outbox, "-t", user="root", entry=entry).returncode == 0  # someone else's
    result = send(outbox, "-t", user="nobody", entry=entry)
    assert result.returncode == 0, result.stderr

    nobody = pwd.getpwnam("nobody").pw_uid
    files = list((outbox / "new").iterdir())
    theirs = [f for f in files if f.stat().st_uid == nobody]
    assert len(files) == 2 and len(theirs) == 1
    # Readable by the submitter and the delivering service's group (the folder's, by
    # setgid), by no other user.
    assert all(f.stat().st_mode & 0o777 == 0o640 for f in files)
    assert {f.stat().st_gid for f in files} == {(outbox / "new").stat().st_gid}
    peek = subprocess.run(
        ["runuser", "-u", "nobody", "--", "ls", str(outbox / "new")], capture_output=True
    )
    assert peek.returncode != 0  # the folder cannot be listed by a dropping user
    [root_file] = [f for f in files if f not in theirs]
    other = subprocess.run(
        ["runuser", "-u", "nobody", "--", "cat", str(root_file)], capture_output=True
    )
    assert other.returncode != 0 and b"Subject" not in other.stdout  # nor another's message
    assert read(theirs[0])[0].submitted_by == "nobody"


def test_the_entry_point_imports_neither_django_nor_transports_nor_slow_modules(outbox):
    # What an application's send pays for: a real -t submission run as installed
    # (/usr/bin/python3 -IS, the shebang's), and every module it imported.
    env = {**os.environ, "XMAILADMIN_OUTBOX": str(outbox)}
    argv = ["/usr/bin/python3", "-IS", "-X", "importtime", str(ENTRY), "-t", "-i"]
    out = subprocess.run(argv, input=MESSAGE.decode(), capture_output=True, env=env, text=True)

    assert out.returncode == 0, out.stderr
    timings = [line.split("|")[-1] for line in out.stderr.splitlines() if "|" in line]
    loaded = {name.strip().split(".")[0] for name in timings[1:]}  # [0] is the heading
    assert "outbox" in loaded
    assert not loaded & {"django", "transports"}
    assert not loaded & {"json", "re", "email", "pathlib", "dataclasses", "secrets", "socket"}
    assert len(list((outbox / "new").iterdir())) == 1


def test_wait_without_a_delivery_says_so_after_the_wait_and_accepts(outbox):
    started = time.monotonic()
    result = send(outbox, "--wait", "1", "-t")
    took = time.monotonic() - started

    assert result.returncode == 0  # accepted: the message is safely in the outbox
    assert result.stderr.decode().strip() == (
        "xmail-sendmail: in the outbox; no delivery attempt within 1 s (is the worker running?)"
    )
    assert 1 <= took < 10
    assert len(list((outbox / "new").iterdir())) == 1


def test_wait_is_also_accepted_with_an_equals_sign(outbox):
    result = send(outbox, "--wait=0.2", "-t")

    assert result.returncode == 0
    assert "no delivery attempt within 0.2 s" in result.stderr.decode()


@pytest.mark.parametrize("args", [["--wait", "soon"], ["--wait=-1"], ["--wait=nan"], ["--wait="]])
def test_wait_needs_a_number_of_seconds(outbox, args):
    result = send(outbox, *args, "-t")

    assert result.returncode == 64
    assert "--wait needs a number of seconds" in result.stderr.decode()
    assert list((outbox / "new").iterdir()) == []


def test_wait_as_the_last_argument_is_a_usage_error(outbox):
    result = send(outbox, "b@example.net", "--wait")

    assert result.returncode == 64 and "--wait needs a value" in result.stderr.decode()


@pytest.mark.parametrize("flags", [["-B8BITMIME"], ["-B", "8BITMIME"], ["-B", "7BIT"]])
def test_crons_body_type_flag_is_accepted(outbox, flags):
    # Debian's cron: sendmail -FCronDaemon -i -B8BITMIME -oem RECIPIENT
    result = send(outbox, "-FCronDaemon", "-i", *flags, "-oem", "admin@example.org")

    assert result.returncode == 0, result.stderr
    [path] = (outbox / "new").iterdir()
    assert read(path)[0].recipients == ["admin@example.org"]


def test_crons_mail_to_root_goes_to_the_admin_address(outbox):
    write_admin_address(outbox, "admin@example.org")
    cron = b"From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@host> run-parts\n\nout\n"

    result = send(outbox, "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root", stdin=cron)

    assert result.returncode == 0, result.stderr
    [path] = (outbox / "new").iterdir()
    envelope, kept = read(path)
    assert envelope.recipients == ["admin@example.org"]
    assert b"To: root\n" in kept  # the header stays as cron wrote it
