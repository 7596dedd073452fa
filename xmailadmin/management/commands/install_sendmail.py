"""Install ``xmail-sendmail`` where applications look for a sendmail (run as root).

    manage.py install_sendmail [--owner USER] [--group NAME] [--force] [--sbin DIR]
                               [--admin-address ADDRESS]
    manage.py install_sendmail --as-sendmail [--priority N] [...]
    manage.py install_sendmail --remove

Links this checkout's ``bin/xmail-sendmail`` as ``/usr/local/sbin/xmail-sendmail`` and
prepares the outbox (``XMAILADMIN_OUTBOX``) for the delivering service: ``--owner`` the
service's user (root only), ``--group`` the group that reads dropped messages (default:
the owner's group, else the outbox's group, else this process's). ``--admin-address``
is where mail to a bare local user goes (cron mails ``root``). ``--as-sendmail``
also makes ``/usr/sbin/sendmail`` point at the link through Debian's alternatives, only
when no package (an MTA) owns that path and no other file is there. ``--remove`` undoes
the alternatives entry and the link; the outbox and its messages stay.

``--altdir``, ``--admindir``, ``--sendmail-path`` and ``--log`` are update-alternatives'
own folders and files: the tests use them to stay away from the real ones.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from outbox import spool

LINK_NAME = "xmail-sendmail"
ALT_NAME = "sendmail"
DEFAULT_SBIN = "/usr/local/sbin"
DEFAULT_SENDMAIL = "/usr/sbin/sendmail"
# Older programs (and some PHP builds) call /usr/lib/sendmail; every Debian MTA ships it.
DEFAULT_LIB_SENDMAIL = "/usr/lib/sendmail"
LIB_ALT_NAME = "sendmail.lib"
DEFAULT_ALTDIR = "/etc/alternatives"
DEFAULT_ADMINDIR = "/var/lib/dpkg/alternatives"
# Low: a real MTA that registers itself as a sendmail alternative wins in auto mode.
DEFAULT_PRIORITY = 10
OUTBOX_ENTRIES = ("tmp", "new", "cur", "done", "status", spool.TRIGGER)
# The management commands may run with a bare environment (install-service.sh: env -i).
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _tool(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + SYSTEM_PATH)


def _describe(path: Path) -> str:
    if path.is_symlink():
        return f"a link to {os.readlink(path)}"
    if path.is_dir():
        return "a folder"
    return "a file"


def _points_at(link: Path, target: Path) -> bool:
    """Whether ``link`` is a symbolic link naming ``target`` itself (not just a file that
    happens to resolve to it)."""
    if not link.is_symlink():
        return False
    named = os.path.normpath(os.path.join(link.parent, os.readlink(link)))
    return named == os.path.normpath(target)


@dataclass(frozen=True)
class Alternatives:
    """Debian's update-alternatives for the ``sendmail`` name, in the given folders."""

    link: Path  # /usr/sbin/sendmail
    lib_link: Path  # /usr/lib/sendmail, a slave of the same entry
    altdir: Path
    admindir: Path
    log: Path | None

    def run(self, *args: str) -> subprocess.CompletedProcess:
        tool = _tool("update-alternatives")
        if tool is None:
            raise CommandError(
                "update-alternatives is not installed: --as-sendmail needs Debian's "
                "alternatives system; point applications at the xmail-sendmail link instead"
            )
        command = [tool, "--altdir", str(self.altdir), "--admindir", str(self.admindir)]
        if self.log is not None:
            command += ["--log", str(self.log)]
        return subprocess.run(command + list(args), capture_output=True, text=True, timeout=60)

    def choices(self) -> dict[str, int]:
        """The registered alternatives for ``sendmail``: path -> priority."""
        if _tool("update-alternatives") is None:
            return {}
        result = self.run("--query", ALT_NAME)
        if result.returncode != 0:  # no such group: nothing registered
            return {}
        found, current = {}, None
        for line in result.stdout.splitlines():
            key, _, value = line.partition(": ")
            if key == "Alternative":
                current = value
            elif key == "Priority" and current is not None:
                found[current] = int(value)
        return found

    def must(self, *args: str) -> None:
        result = self.run(*args)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            raise CommandError(f"update-alternatives {' '.join(args)} failed: {detail}")


def package_owners(path: Path) -> list[str]:
    """The packages that ship ``path`` (dpkg -S); none on a system without dpkg."""
    tool = _tool("dpkg-query")
    if tool is None:
        return []
    result = subprocess.run([tool, "-S", str(path)], capture_output=True, text=True, timeout=60)
    if result.returncode == 1:  # "no path found matching pattern"
        return []
    if result.returncode != 0:
        raise CommandError(f"dpkg -S {path} failed: {result.stderr.strip()}")
    owners: list[str] = []
    for line in result.stdout.splitlines():
        names, _, shipped = line.partition(": ")
        if not line.startswith("diversion by") and shipped == str(path):
            owners += [name.strip() for name in names.split(",")]
    return list(dict.fromkeys(owners))


def refuse_unless_free(alternatives: Alternatives, link: Path) -> None:
    """--as-sendmail leaves a sendmail alone that a package or an administrator put there."""
    path = alternatives.link
    if _tool("update-alternatives") is None:
        raise CommandError(
            "update-alternatives is not installed: --as-sendmail needs Debian's alternatives "
            f"system; nothing was changed. Point applications at {link} instead."
        )
    if owners := package_owners(path):
        raise CommandError(
            f"{path} belongs to the package {', '.join(owners)} (a mail transfer agent): "
            f"it is left alone and nothing was changed. Point applications at {link} "
            f"instead, or remove that MTA first and run --as-sendmail again."
        )
    if _points_at(path, alternatives.altdir / ALT_NAME) or not os.path.lexists(path):
        return
    raise CommandError(
        f"{path} is {_describe(path)} that no package and no alternatives entry manage: "
        f"it is left alone and nothing was changed. Point applications at {link} instead, "
        f"or move that file away first and run --as-sendmail again."
    )


def refuse_foreign_link(link: Path, target: Path, force: bool) -> None:
    if not os.path.lexists(link) or _points_at(link, target):
        return
    if link.is_dir() and not link.is_symlink():
        raise CommandError(f"{link} is a folder: it is left alone, even with --force")
    if not force:
        raise CommandError(
            f"{link} exists and is {_describe(link)}, not a link to {target}: it is kept "
            f"and nothing was changed. Add --force to replace it with that link."
        )


def shebang(script: Path) -> str:
    """The interpreter a script's #! line names (``/usr/bin/python3 -IS`` → the path)."""
    with open(script, "rb") as file:
        first = file.readline()
    return first[2:].split()[0].decode() if first.startswith(b"#!") else "/usr/bin/python3"


def make_link(link: Path, target: Path) -> bool:
    """Link ``link`` to ``target``; False when it is that link already."""
    if _points_at(link, target):
        return False
    link.parent.mkdir(parents=True, exist_ok=True)
    # A new link beside it, then a rename: the old file stays until the new link is there.
    fresh = link.with_name(f".{link.name}.{os.getpid()}")
    fresh.unlink(missing_ok=True)
    fresh.symlink_to(target)
    os.replace(fresh, link)
    return True


def make_parents(folder: Path) -> None:
    """Folders above the outbox, made 0755 whatever the umask: every local user who
    submits has to pass through them."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        made.mkdir(exist_ok=True)
        os.chmod(made, 0o755)


def prepare_outbox(root: Path, uid: int | None, gid: int) -> list[str]:
    """The outbox made (spool.prepare) and given to the service's user; returns what was
    not there before."""
    made = [
        name if name == spool.TRIGGER else f"{name}/"
        for name in OUTBOX_ENTRIES
        if not os.path.lexists(root / name)
    ]
    make_parents(root.parent)
    spool.prepare(root, group=gid)
    if uid is not None:
        for path in (root, *(root / name for name in OUTBOX_ENTRIES)):
            os.chown(path, uid, gid, follow_symlinks=False)
    return made


def unreachable_parents(root: Path) -> list[Path]:
    return [p for p in root.parents if not os.stat(p).st_mode & stat.S_IXOTH]


def _user(name: str | None) -> pwd.struct_passwd | None:
    if name is None:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise CommandError(f"--owner {name}: no such user") from None


def _group(name: str | None, owner: pwd.struct_passwd | None, root: Path) -> int:
    """The group named, else the owner's, else the one the outbox has already (a second
    run without options changes nothing), else this process's."""
    if name is None:
        if owner is not None:
            return owner.pw_gid
        return os.stat(root / "new").st_gid if (root / "new").is_dir() else os.getegid()
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise CommandError(f"--group {name}: no such group") from None


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


class Command(BaseCommand):
    help = "Link xmail-sendmail into /usr/local/sbin (and, if asked, as /usr/sbin/sendmail)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--owner", help="the delivering service's user (root only)")
        parser.add_argument("--group", help="the group that reads dropped messages")
        parser.add_argument("--force", action="store_true", help="replace another file there")
        parser.add_argument("--sbin", default=DEFAULT_SBIN, help=f"folder ({DEFAULT_SBIN})")
        parser.add_argument(
            "--as-sendmail", action="store_true", help="also as sendmail, via alternatives"
        )
        parser.add_argument("--priority", type=int, default=DEFAULT_PRIORITY)
        parser.add_argument("--sendmail-path", default=DEFAULT_SENDMAIL)
        parser.add_argument("--lib-sendmail-path", default=DEFAULT_LIB_SENDMAIL)
        parser.add_argument("--altdir", default=DEFAULT_ALTDIR)
        parser.add_argument("--admindir", default=DEFAULT_ADMINDIR)
        parser.add_argument("--log", help="update-alternatives' log file (its own default)")
        parser.add_argument("--remove", action="store_true", help="undo; keeps the outbox")
        parser.add_argument(
            "--admin-address", help="where mail to a local user (root, from cron) goes"
        )

    def handle(self, *args, **options) -> None:
        link = Path(options["sbin"]).absolute() / LINK_NAME
        target = Path(settings.BASE_DIR).resolve() / "bin" / LINK_NAME
        alternatives = Alternatives(
            link=Path(options["sendmail_path"]).absolute(),
            lib_link=Path(options["lib_sendmail_path"]).absolute(),
            altdir=Path(options["altdir"]).absolute(),
            admindir=Path(options["admindir"]).absolute(),
            log=Path(options["log"]).absolute() if options["log"] else None,
        )
        try:
            if options["remove"]:
                self._remove(link, target, alternatives)
            else:
                self._checked_install(link, target, alternatives, options)
        except PermissionError as exc:
            raise CommandError(f"{exc.filename}: permission denied (run it as root)") from None

    def _checked_install(self, link: Path, target: Path, alternatives, options) -> None:
        """Everything that would refuse first, so that a refused run changes nothing."""
        if not os.access(target, os.X_OK):
            raise CommandError(f"{target} is missing or not executable: is the checkout whole?")
        interpreter = shebang(target)
        if not os.access(interpreter, os.X_OK):
            raise CommandError(
                f"{target} runs on {interpreter}, which is not there: install Debian's "
                "python3 (apt-get install python3)"
            )
        owner = _user(options["owner"])
        if owner is not None and os.geteuid() != 0:
            raise CommandError("--owner needs root: run it with sudo")
        gid = _group(options["group"], owner, Path(settings.XMAILADMIN_OUTBOX))
        admin = options["admin_address"]
        if admin is not None:
            try:
                validate_email(admin)
            except ValidationError:
                raise CommandError(
                    f"--admin-address {admin!r} is not an e-mail address; nothing was changed"
                ) from None
        if options["as_sendmail"]:
            refuse_unless_free(alternatives, link)
        refuse_foreign_link(link, target, options["force"])
        self._install(link, target, owner, gid)
        self._admin_address(Path(settings.XMAILADMIN_OUTBOX), admin)
        if options["as_sendmail"]:
            self._as_sendmail(link, target, alternatives, options["priority"])

    def _install(self, link: Path, target: Path, owner, gid: int) -> None:
        if make_link(link, target):
            self.stdout.write(f"linked {link} -> {target}")
        else:
            self.stdout.write(f"{link} links to {target} already: unchanged")
        root = Path(settings.XMAILADMIN_OUTBOX)
        made = prepare_outbox(root, owner.pw_uid if owner else None, gid)
        who = f"owner {owner.pw_name}, " if owner else ""
        self.stdout.write(
            f"outbox {root}: "
            + (f"made {' '.join(made)}" if made else "there already")
            + f" ({who}group {_group_name(gid)}: tmp/ new/ 3733, cur/ done/ 0700, "
            "status/ 0711, trigger FIFO 0622)"
        )
        self._outbox_notes(root)
        self._compile(target)

    def _admin_address(self, root: Path, admin: str | None) -> None:
        if admin is not None:
            spool.write_admin_address(root, admin)
        now = spool.admin_address(root)
        if now:
            self.stdout.write(f"mail to a local user (root, from cron) goes to {now}")
        else:
            self.stdout.write(
                "note: no admin address is set: mail to a local user (cron's root) is "
                "refused; set one with --admin-address ADDRESS"
            )

    def _compile(self, target: Path) -> None:
        """Byte-compile outbox/ for the entry point's interpreter, as root: a user who
        submits cannot write __pycache__, and would otherwise compile it on every send."""
        folder = target.parent.parent / "outbox"
        result = subprocess.run(
            [shebang(target), "-m", "compileall", "-q", str(folder)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            self.stdout.write(
                f"warning: {folder} could not be byte-compiled ({result.stdout.strip()}): "
                "xmail-sendmail still works, only each start is slower"
            )

    def _outbox_notes(self, root: Path) -> None:
        for folder in unreachable_parents(root):
            self.stdout.write(
                f"warning: {folder} is closed to other users (mode "
                f"{stat.S_IMODE(os.stat(folder).st_mode):04o}): only root can submit "
                "through xmail-sendmail until every folder above the outbox has o+x"
            )
        if os.path.normpath(root) != os.path.normpath(spool.DEFAULT_DIR):
            self.stdout.write(
                f"note: the outbox is not the default {spool.DEFAULT_DIR}: every program "
                f"that calls xmail-sendmail needs XMAILADMIN_OUTBOX={root} in its environment"
            )

    def _as_sendmail(self, link: Path, target: Path, alt: Alternatives, priority: int) -> None:
        path = alt.link
        if alt.choices().get(str(link)) == priority and _points_at(path, alt.altdir / ALT_NAME):
            self.stdout.write(f"{path} has {link} as an alternative already: unchanged")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            install = ["--install", str(path), ALT_NAME, str(link), str(priority)]
            lib = alt.lib_link
            lib_free = not os.path.lexists(lib) or _points_at(lib, alt.altdir / LIB_ALT_NAME)
            if lib_free:
                lib.parent.mkdir(parents=True, exist_ok=True)
                install += ["--slave", str(lib), LIB_ALT_NAME, str(link)]
            alt.must(*install)
            self.stdout.write(
                f"{path} -> {alt.altdir / ALT_NAME} -> {link} (Debian alternatives, "
                f"priority {priority}; --remove undoes it)"
            )
            if lib_free:
                self.stdout.write(f"{lib} -> {alt.altdir / LIB_ALT_NAME} -> {link} (with it)")
            else:
                self.stdout.write(f"{lib} is {_describe(lib)}: left alone")
        if os.path.realpath(path) != str(target):
            self.stdout.write(
                f"warning: the alternatives chose {os.path.realpath(path)} for {path} (a "
                f"higher priority or manual mode); to use xmail-sendmail: update-alternatives "
                f"--set {ALT_NAME} {link}"
            )

    def _remove(self, link: Path, target: Path, alt: Alternatives) -> None:
        if str(link) in alt.choices():
            alt.must("--remove", ALT_NAME, str(link))
            now = f"now {_describe(alt.link)}" if os.path.lexists(alt.link) else "gone"
            self.stdout.write(f"removed {link} from the {ALT_NAME} alternatives: {alt.link} {now}")
        else:
            self.stdout.write(f"{link} is no {ALT_NAME} alternative: nothing to undo there")
        if _points_at(link, target):
            link.unlink()
            self.stdout.write(f"removed the link {link}")
        elif os.path.lexists(link):
            self.stdout.write(f"{link} is {_describe(link)}, not our link: kept")
        else:
            self.stdout.write(f"{link} is not there: nothing to remove")
        self.stdout.write(
            f"kept the outbox {settings.XMAILADMIN_OUTBOX} and the messages in it (delete "
            "it by hand once the outbox page shows nothing waiting)"
        )
