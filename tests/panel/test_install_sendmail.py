"""manage.py install_sendmail, for real as root: the link applications call, the outbox
the service delivers from, and /usr/sbin/sendmail through Debian's alternatives only
where no MTA owns it. Every path is a tmp folder; /usr/sbin/sendmail is only looked at."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from outbox_helpers import ENTRY, message

from outbox import spool

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="install_sendmail chowns the outbox and runs update-alternatives: run as root",
)


@pytest.fixture
def box(tmp_path, settings):
    settings.XMAILADMIN_OUTBOX = str(tmp_path / "spool" / "outbox")
    return tmp_path


def install(box: Path, *args: str) -> str:
    out = StringIO()
    call_command("install_sendmail", "--sbin", str(box / "sbin"), *args, stdout=out)
    return out.getvalue()


def alternatives(box: Path) -> list[str]:
    (box / "alt").mkdir(exist_ok=True)
    (box / "adm").mkdir(exist_ok=True)
    return [
        "--altdir", str(box / "alt"), "--admindir", str(box / "adm"),
        "--sendmail-path", str(box / "usr-sbin" / "sendmail"), "--log", str(box / "alt.log"),
        "--lib-sendmail-path", str(box / "usr-lib" / "sendmail"),
    ]  # fmt: skip


def run_sendmail(program: Path, outbox: Path, *args: str, subject: str):
    return subprocess.run(
        [str(program), *args],
        input=message(subject),
        capture_output=True,
        env={**os.environ, "XMAILADMIN_OUTBOX": str(outbox)},
        timeout=60,
    )


def dropped(outbox: Path) -> list[tuple[spool.Envelope, bytes]]:
    return [spool.read(path) for path in (outbox / "new").iterdir()]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_link_points_at_this_checkout_and_a_second_run_changes_nothing(box):
    link = box / "sbin" / "xmail-sendmail"

    first = install(box)

    assert link.is_symlink() and os.readlink(link) == str(ENTRY)
    assert f"linked {link} -> {ENTRY}" in first
    before = os.lstat(link)
    second = install(box)
    assert "already: unchanged" in second and "outbox" in second and "there already" in second
    after = os.lstat(link)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_foreign_file_is_kept_without_force(box):
    link = box / "sbin" / "xmail-sendmail"
    link.parent.mkdir()
    link.write_text("#!/bin/sh\necho someone else's\n")

    with pytest.raises(CommandError, match=r"exists and is a file.*kept.*--force"):
        install(box)

    assert link.read_text() == "#!/bin/sh\necho someone else's\n"
    assert not (box / "spool").exists()  # refused before anything was made
    install(box, "--force")
    assert os.readlink(link) == str(ENTRY)


def test_the_outbox_is_made_with_the_drop_modes(box, settings):
    outbox = Path(settings.XMAILADMIN_OUTBOX)

    out = install(box)

    assert "made tmp/ new/ cur/ done/ status/ trigger" in out
    for name in ("tmp", "new"):
        assert mode(outbox / name) == 0o3733
        assert os.stat(outbox / name).st_gid == os.getegid()
    assert mode(outbox / "cur") == mode(outbox / "done") == 0o700
    assert mode(outbox / "status") == 0o711
    assert stat.S_ISFIFO(os.lstat(outbox / "trigger").st_mode)
    assert mode(outbox / "trigger") == 0o622


def test_owner_nobody_gets_the_outbox_and_a_message_through_the_link_lands_in_new(box, settings):
    outbox = Path(settings.XMAILADMIN_OUTBOX)
    nobody = pwd.getpwnam("nobody")

    out = install(box, "--owner", "nobody")

    assert "owner nobody" in out
    for path in (outbox, *(outbox / n for n in ("tmp", "new", "cur", "done", "status"))):
        assert (os.stat(path).st_uid, os.stat(path).st_gid) == (nobody.pw_uid, nobody.pw_gid)
    assert os.lstat(outbox / "trigger").st_uid == nobody.pw_uid
    assert mode(outbox / "new") == 0o3733  # the chown kept setgid and sticky
    result = run_sendmail(box / "sbin" / "xmail-sendmail", outbox, "-t", subject="Per Link")
    assert result.returncode == 0, result.stderr
    [(envelope, body)] = dropped(outbox)
    assert envelope.recipients == ["rcpt@example.net"] and b"Subject: Per Link" in body
    [file] = (outbox / "new").iterdir()
    assert os.stat(file).st_gid == nobody.pw_gid  # the service's group may read it
    again = install(box)  # no options: the owner's group stays
    assert os.stat(outbox / "new").st_gid == nobody.pw_gid and "group nogroup" in again


def postfix_owner() -> str | None:
    result = subprocess.run(
        ["dpkg", "-S", "/usr/sbin/sendmail"], capture_output=True, text=True, timeout=60
    )
    return result.stdout.split(":")[0] if result.returncode == 0 else None


def test_as_sendmail_is_refused_where_an_mta_owns_usr_sbin_sendmail(box):
    owner = postfix_owner()  # CI installs postfix
    link = box / "sbin" / "xmail-sendmail"
    if owner:
        before = os.lstat("/usr/sbin/sendmail")
        with pytest.raises(CommandError) as refused:
            install(box, "--as-sendmail", "--log", str(box / "alt.log"))
        text = str(refused.value)
        assert f"belongs to the package {owner}" in text and f"at {link} instead" in text
        after = os.lstat("/usr/sbin/sendmail")
        assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    else:  # no package owns it here: a file there is refused all the same
        plain = box / "usr-sbin" / "sendmail"
        plain.parent.mkdir()
        plain.write_text("#!/bin/sh\n")
        with pytest.raises(CommandError, match="no package and no alternatives entry manage"):
            install(box, "--as-sendmail", *alternatives(box))
        assert plain.read_text() == "#!/bin/sh\n"
    assert not os.path.lexists(link)  # refused before anything was made


def test_a_plain_sendmail_file_is_refused(box):
    plain = box / "usr-sbin" / "sendmail"
    plain.parent.mkdir()
    plain.write_text('#!/bin/sh\nexec /opt/other/mailer "$@"\n')

    with pytest.raises(CommandError, match=r"is a file that no package.*left alone"):
        install(box, "--as-sendmail", *alternatives(box))

    assert plain.read_text().startswith("#!/bin/sh\nexec /opt/other")
    assert not any((box / "adm").iterdir()) and not any((box / "alt").iterdir())


def test_as_sendmail_through_alternatives_submits_and_remove_undoes_it(box, settings):
    outbox = Path(settings.XMAILADMIN_OUTBOX)
    link, sendmail = box / "sbin" / "xmail-sendmail", box / "usr-sbin" / "sendmail"
    lib_sendmail = box / "usr-lib" / "sendmail"

    out = install(box, "--as-sendmail", *alternatives(box))

    assert f"{sendmail} -> {box / 'alt' / 'sendmail'} -> {link}" in out
    assert os.readlink(sendmail) == str(box / "alt" / "sendmail")
    assert os.readlink(box / "alt" / "sendmail") == str(link)
    assert os.readlink(link) == str(ENTRY) and os.path.realpath(sendmail) == str(ENTRY)
    assert os.path.realpath(lib_sendmail) == str(ENTRY)  # the old path programs still call
    for program in (sendmail, lib_sendmail):
        result = run_sendmail(program, outbox, "-t", "-i", subject="Als sendmail")
        assert result.returncode == 0, result.stderr
    assert [(e.recipients, b"Subject: Als sendmail" in body) for e, body in dropped(outbox)] == [
        (["rcpt@example.net"], True)
    ] * 2
    assert "alternative already: unchanged" in install(box, "--as-sendmail", *alternatives(box))

    removed = install(box, "--remove", *alternatives(box))

    assert not os.path.lexists(sendmail) and not os.path.lexists(box / "alt" / "sendmail")
    assert not os.path.lexists(lib_sendmail) and not os.path.lexists(link)
    assert f"kept the outbox {outbox}" in removed
    assert len(dropped(outbox)) == 2  # the message waits on, for the delivery
    again = install(box, "--remove", *alternatives(box))
    assert "nothing to undo there" in again and "nothing to remove" in again


def test_remove_keeps_a_file_that_is_not_our_link(box):
    link = box / "sbin" / "xmail-sendmail"
    link.parent.mkdir()
    link.symlink_to("/usr/sbin/sendmail")

    out = install(box, "--remove", *alternatives(box))

    assert f"{link} is a link to /usr/sbin/sendmail, not our link: kept" in out
    assert os.readlink(link) == "/usr/sbin/sendmail"


def test_an_admin_address_takes_mail_for_root(box, settings):
    outbox = Path(settings.XMAILADMIN_OUTBOX)
    assert "no admin address is set" in install(box)

    out = install(box, "--admin-address", "admin@example.org")

    assert "mail to a local user (root, from cron) goes to admin@example.org" in out
    assert mode(outbox / spool.ADMIN_ADDRESS) == 0o644  # every submitter reads it
    result = run_sendmail(box / "sbin" / "xmail-sendmail", outbox, "root", subject="Cron")
    assert result.returncode == 0, result.stderr
    [(envelope, _)] = dropped(outbox)
    assert envelope.recipients == ["admin@example.org"]
    assert "goes to admin@example.org" in install(box)  # kept by a run without the option


def test_an_admin_address_that_is_no_address_changes_nothing(box, settings):
    with pytest.raises(CommandError, match="'root' is not an e-mail address; nothing was"):
        install(box, "--admin-address", "root")

    assert not os.path.lexists(box / "sbin" / "xmail-sendmail")
    assert not os.path.lexists(Path(settings.XMAILADMIN_OUTBOX) / spool.ADMIN_ADDRESS)
