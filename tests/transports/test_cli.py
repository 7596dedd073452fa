"""``python -m transports``: what support runs over SSH, without Django."""

from __future__ import annotations

import json
import subprocess
import sys

from mailcommands import RECIPIENT, SENDER
from smtp_server import TEST_ID_HEADER

from transports.base import SendResult, Step
from transports.catalogue import KEYS
from transports.cli import summary
from transports.texts import Text


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "transports", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def send_args(smtp, *extra: str) -> list[str]:
    return [
        "send",
        "python3",
        "--host",
        "localhost",
        "--port",
        str(smtp.smtps_port),
        "--mode",
        "smtps",
        "--user",
        smtp.user,
        "--password-file",
        "-",
        "--from",
        SENDER,
        "--to",
        RECIPIENT,
        "--ca-file",
        str(smtp.ca_file),
        *extra,
    ]


def test_probe_prints_every_catalogue_row_as_json():
    done = cli("probe", "--json")

    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["key"] for r in rows] == list(KEYS)
    curl = next(r for r in rows if r["key"] == "curl")
    assert curl["found"] and curl["tls_library"] == "OpenSSL"


def test_probe_prints_a_table_for_people():
    done = cli("probe")

    assert done.returncode == 0
    assert "TLS1.2" in done.stdout and "mailx-mailutils" in done.stdout


def test_send_exits_0_on_a_pass_and_prints_the_result_as_json(smtp):
    done = cli(*send_args(smtp, "--json"), stdin=smtp.password + "\n")

    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert {"ok", "step", "reason", "duration_s", "tls_version", "transcript"} <= set(result)
    assert result["ok"] is True and result["tls_version"] == "TLSv1.3"
    assert smtp.wait_for(1).message[TEST_ID_HEADER]
    assert smtp.password not in done.stdout


def test_send_exits_1_on_a_failure_and_names_the_step(smtp):
    done = cli(*send_args(smtp, "--json"), stdin="wrong\n")

    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["step"] == "auth" and result["action"] == "edit_login"
    assert f"check the user name {smtp.user} and the password" in result["suggestion"]
    assert result["suggestion_text"]["params"] == {"user": smtp.user}


def test_send_to_the_wrong_mode_suggests_the_other_one(smtp):
    args = send_args(smtp)
    args[args.index("--port") + 1] = str(smtp.starttls_port)  # implicit TLS at STARTTLS

    done = cli(*args, "--json", stdin=smtp.password + "\n")

    result = json.loads(done.stdout)
    assert not result["ok"] and result["action"] == "switch_mode", result["reason"]
    assert "switch the mode to STARTTLS" in result["suggestion"]
    assert "what to do: the port speaks the other TLS mode" in cli(
        *args, stdin=smtp.password + "\n"
    ).stdout


def test_send_refuses_bad_input_with_exit_2_and_a_clear_error(smtp):
    done = cli(
        "send",
        "curl",
        "--host",
        "bad host;id",
        "--port",
        "25",
        "--user",
        "u",
        "--password-file",
        "-",
        "--from",
        SENDER,
        "--to",
        RECIPIENT,
        stdin="pw\n",
    )

    assert done.returncode == 2
    assert "not a valid host name" in done.stderr


def test_detect_mode_tells_smtps_from_starttls_by_asking_the_server(smtp):
    smtps = cli("detect-mode", "--host", smtp.host, "--port", str(smtp.smtps_port), "--json")
    starttls = cli("detect-mode", "--host", smtp.host, "--port", str(smtp.starttls_port))

    assert smtps.returncode == 0, smtps.stderr
    assert json.loads(smtps.stdout)["mode"] == "smtps"
    assert starttls.returncode == 0 and starttls.stdout.startswith("starttls: ")


def test_detect_mode_exits_1_when_no_mode_was_seen(refused_port):
    result = cli("detect-mode", "--host", "127.0.0.1", "--port", str(refused_port))

    assert result.returncode == 1
    assert result.stdout.startswith("unknown: no connection to 127.0.0.1")


def test_a_pass_whose_tool_named_no_tls_version_says_so_instead_of_guessing():
    unnamed = summary(SendResult(ok=True, step=Step.DONE, reason=Text("sent"), command="x"))
    named = summary(
        SendResult(ok=True, step=Step.DONE, reason=Text("sent"), command="x", tls_version="TLSv1.3")
    )
    failed = summary(SendResult(ok=False, step=Step.CONNECT, reason=Text("no"), command="x"))

    assert "TLS: not reported by the tool" in unnamed
    assert "TLS: TLSv1.3" in named and "not reported" not in named
    assert "TLS:" not in failed
