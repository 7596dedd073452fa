"""The support bundle: made of real work (a probe, test mails and a server check against
the loopback SMTP server), downloaded as JSON and HTML without any secret, uploaded
again and shown with the live pages in the reader's language; hostile files refused or
shown escaped."""

from __future__ import annotations

import base64
import json
import os
import stat
from urllib.parse import quote, quote_plus

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from transports.secrecy import MASK
from xmailadmin import bundle, services
from xmailadmin.models import AuditEntry, Diagnosis, SupportBundle, TestSend
from xmailadmin.tasks import diagnose, probe_all, send_test
from xmailadmin.texts import say

pytestmark = pytest.mark.django_db


def spellings(password: str, user: str) -> list[str]:
    """The password as a tool may print it: plain, base64 (alone and in AUTH PLAIN and
    LOGIN forms), URL-encoded."""
    b64 = lambda raw: base64.b64encode(raw.encode()).decode()  # noqa: E731
    return [password, b64(password), b64(f"\0{user}\0{password}"), b64(f"{user}:{password}"),
            quote(password, safe=""), quote_plus(password)]  # fmt: skip


def every_secret(client, account, panel_admin_password: str) -> dict[str, str]:
    secrets = {f"password {i}": s for i, s in
               enumerate(spellings(account.decrypt_password(), account.username))}  # fmt: skip
    secrets.update({f"fernet key {i}": k for i, k in enumerate(settings.FERNET_KEYS)})
    secrets["secret key"] = settings.SECRET_KEY
    secrets["session key"] = client.session.session_key
    secrets["admin password"] = panel_admin_password
    return secrets


def download(client, fmt: str) -> str:
    response = client.get(reverse("bundle-download", args=[fmt]))
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Disposition"].startswith("attachment; filename=")
    return response.content.decode()


def upload(client, raw: bytes, name: str = "bundle.json"):
    return client.post(reverse("bundle-upload"), {"bundle": SimpleUploadedFile(name, raw)})


@pytest.fixture
def real_work(account, worker_alive):
    """A probe, a passing and a failing test mail, and a server check: real, on loopback."""
    run = services.start_probe(None)
    probe_all.apply(kwargs={"run_id": run.id})
    for send in services.start_tests(account, ["python3", "curl"], None):
        send_test.apply(kwargs={"send_id": send.id})
    row = Diagnosis(kind="server", account=account, account_name=account.name,
                    host=account.host, port=account.port, username=account.username,
                    ca_file=account.ca_file, use_login=True, sender=account.sender)  # fmt: skip
    services.start_diagnosis(row, None)
    diagnose.apply(kwargs={"diagnosis_id": row.id})
    return account


# --- what is in it, and what is not -----------------------------------------------------


def test_the_bundle_of_real_work_holds_what_support_needs(admin_web, real_work):
    data = json.loads(download(admin_web, "json"))
    assert (data["format"], data["schema"]) == (bundle.FORMAT, bundle.SCHEMA)
    assert data["product"]["version"] == "0.1.0"
    assert "Debian" in data["system"]["os"] and data["system"]["python"]
    results = {r["key"]: r for r in data["probe"]["results"]}
    for key, package in (("curl", "curl"), ("msmtp", "msmtp"), ("perl", "perl")):
        assert results[key]["found"], key
        assert results[key]["package"].startswith(package) and results[key]["package_version"]
        assert results[key]["tls_library"]
    assert [o["key"] for o in data["order"]][:2] == ["python", "python3"]
    (account,) = data["accounts"]
    assert account["host"] == real_work.host and account["has_password"] is True
    assert "password" not in account and "password_encrypted" not in account
    tests = {t["command"]: t for t in account["last_tests"]}
    assert tests["python3"]["state"] == "passed" and tests["curl"]["state"] == "passed"
    assert "AUTH" in tests["python3"]["transcript"]
    assert tests["python3"]["tls_version"].startswith("TLSv1.")
    server = account["diagnosis"]["server"]
    assert server["state"] == "passed" and server["report"]["findings"]
    assert account["diagnosis"]["dns"] is None
    assert set(data["outbox"]["counts"]) == {"waiting", "sending", "delivered", "bounced",
                                             "discarded"}  # fmt: skip
    assert any(e["action"] == "account_created" for e in data["audit"])
    made = AuditEntry.objects.filter(action=AuditEntry.Action.BUNDLE_MADE).get()
    assert made.username == "chef" and made.detail == "json"


def test_no_secret_reaches_the_json_or_the_html(admin_web, real_work):
    texts = {"json": download(admin_web, "json"), "html": download(admin_web, "html")}
    secrets = every_secret(admin_web, real_work, "pw-chef")
    for fmt, text in texts.items():
        for name, secret in secrets.items():
            assert secret and secret not in text, f"{name} in the {fmt} bundle"


def test_a_secret_a_tool_printed_is_masked_in_every_field(admin_web, account):
    password, user = account.decrypt_password(), account.username
    leaked = " | ".join(spellings(password, user))
    TestSend.objects.create(account=account, account_name=account.name, command="curl",
                            recipient=account.recipient, state="failed", transcript=leaked,
                            detail=f"curl said {password}", reason=leaked)  # fmt: skip
    AuditEntry.record(None, AuditEntry.Action.KEY_ROTATED, detail=settings.FERNET_KEYS[0])
    for fmt in ("json", "html"):
        text = download(admin_web, fmt)
        for spelling in [*spellings(password, user), settings.FERNET_KEYS[0]]:
            assert spelling not in text, fmt
        assert MASK in text


def test_a_bundle_with_a_secret_left_is_not_written(account):
    data = bundle.collect()
    data["audit"].append({"detail": account.decrypt_password()})  # past the scrubbing
    with pytest.raises(bundle.SecretLeft):
        bundle.dumps(data)


def test_the_command_writes_json_and_html_files_only_its_owner_reads(tmp_path, real_work):
    out = tmp_path / "bundle.json"
    call_command("bundle", out=str(out))
    assert json.loads(out.read_text())["accounts"][0]["name"] == real_work.name
    page = tmp_path / "bundle.html"
    call_command("bundle", out=str(page), format="html", language="en")
    text = page.read_text()
    assert stat.S_IMODE(os.stat(page).st_mode) == 0o600
    assert "Support bundle of" in text and "<style>" in text
    assert "<script" not in text and "hx-get" not in text  # read offline: no script, no poll
    assert 'id="row-python3"' in text and 'id="matrix-python3"' in text


# --- read in the panel ------------------------------------------------------------------


def test_an_uploaded_bundle_is_shown_read_only_in_the_readers_language(
    admin_web, support_web, account, worker_alive
):
    account.set_password("wrong-password")
    account.save()
    with translation.override("en"):  # the customer reads English
        (send,) = services.start_tests(account, ["python3"], None)
        send_test.apply(kwargs={"send_id": send.id})
    send.refresh_from_db()
    assert send.step == "auth"
    raw = download(admin_web, "json").encode()

    response = upload(support_web, raw, "kunde.json")
    assert response.status_code == 302
    row = SupportBundle.objects.get()
    assert row.server == json.loads(raw)["server"] and row.filename == "kunde.json"
    page = support_web.get(response["Location"]).content.decode()
    banner = page.split('id="bundle-banner"')[1][:400]
    assert f"Supportpaket von {row.server}" in banner and "nur lesbar" in banner
    with translation.override("de"):
        german = say(send.reason_text)
    with translation.override("en"):
        english = say(send.reason_text)
    assert german != english and german in page and english not in page
    assert 'id="row-python3"' in page and 'data-state="failed"' in page
    assert "<form" not in page.split('id="bundle-banner"')[1]  # no button acts on it
    assert "hx-get" not in page.split('id="bundle-banner"')[1]
    assert support_web.get(reverse("support")).content.decode().count("kunde.json") == 1
    assert AuditEntry.objects.filter(action="bundle_uploaded", username="support").exists()


def hostile_bundle(account) -> dict:
    data = bundle.collect()
    script = "<script>alert('x')</script>"
    data["server"] = f"kunde{script}"
    data["accounts"][0]["name"] = f"Büro{script}"
    data["accounts"][0]["last_tests"] = [{
        "command": "python3", "state": "failed", "step": "auth",
        "transcript": "<img src=x onerror=alert(1)>", "reason_text": {
            "msgid": "%(x)s", "params": {"x": script}}, "warnings": [script, {"msgid": 7}],
    }]  # fmt: skip
    data["accounts"][0]["diagnosis"]["server"] = {
        "kind": "server", "state": "weird", "report": {"findings": [
            "no dict", {"check": script, "level": "fail", "text": script}],
            "tls_versions": "all"}}  # fmt: skip
    return data


def test_script_in_a_bundle_is_shown_as_text_never_run(support_web, account):
    data = hostile_bundle(account)
    data["accounts"][0]["last_tests"][0]["warnings"] = [data["server"]]  # no bad msgid here
    response = upload(support_web, json.dumps(data).encode())
    assert response.status_code == 302
    page = support_web.get(response["Location"]).content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda d: json.dumps(d)[:-10], "kein gültiges JSON"),
        (lambda d: "[" * 100_000 + "]" * 100_000, "zu tief verschachtelt"),
        (lambda d: json.dumps({"format": bundle.FORMAT, "x": nested(30)}), "zu tief verschachtelt"),
        (lambda d: json.dumps({**d, "created_at": float("nan")}), "kein gültiges JSON"),
        (lambda d: json.dumps({"format": "something else"}), "kein xmailadmin-Supportpaket"),
        (lambda d: json.dumps({**d, "schema": 99}), "neueren xmailadmin (Schema 99)"),
        (lambda d: json.dumps({**d, "schema": 0}), "älteren xmailadmin (Schema 0)"),
        (lambda d: json.dumps({**d, "server": 5}), "von welchem Server"),
        (lambda d: json.dumps({**d, "audit": [{"detail": "%(x)999999999s"}]}), "Form"),
        (lambda d: json.dumps({**d, "audit": [{"msgid": "x", "params": [1]}]}), "Form"),
        (lambda d: "\udcff".encode("utf-8", "surrogateescape"), "kein gültiges JSON"),
    ],
    ids=["cut", "deep-array", "deep-object", "nan", "other-format", "newer", "older",
         "no-server", "huge-format", "bad-sentence", "not-utf8"],
)  # fmt: skip
def test_a_hostile_or_broken_file_is_refused_in_german(support_web, account, change, words):
    raw = change(bundle.collect())
    response = upload(support_web, raw if isinstance(raw, bytes) else raw.encode())
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="bundle-error"' in page and words in page, page[page.find("bundle-error"):][:300]
    assert not SupportBundle.objects.exists()


def test_a_file_over_the_limit_is_refused_before_it_is_read(support_web, account, settings):
    settings.XMAILADMIN_BUNDLE_MAX_BYTES = 1000
    response = upload(support_web, b" " * 5000)
    assert response.status_code == 400
    assert "höchstens" in response.content.decode() and not SupportBundle.objects.exists()


def test_values_of_the_wrong_type_are_shown_without_breaking_the_page(support_web, account):
    data = hostile_bundle(account)
    data["accounts"][0]["last_tests"][0]["warnings"] = ["plain"]
    data["accounts"][0]["port"] = "not a number"
    data["probe"] = {"results": [{"key": "curl", "found": "yes", "duration_s": 10**400}]}
    data["order"] = [{"key": "nonsense", "position": 1}, "x"]
    response = upload(support_web, json.dumps(data).encode())
    assert response.status_code == 302
    page = support_web.get(response["Location"])
    assert page.status_code == 200 and "Büro&lt;script&gt;" in page.content.decode()


def test_a_bundle_is_deleted_after_a_question_on_the_page(support_web, account):
    upload(support_web, bundle.dumps(bundle.collect()).encode(), "kunde.json")
    row = SupportBundle.objects.get()
    asked = support_web.post(reverse("bundle-delete", args=[row.pk])).content.decode()
    assert 'id="bundle-delete-confirm"' in asked and "wirklich löschen" in asked
    assert SupportBundle.objects.exists()  # nothing deleted without the answer
    response = support_web.post(reverse("bundle-delete", args=[row.pk]), {"confirm": "1"})
    assert response.status_code == 302 and not SupportBundle.objects.exists()
    entry = AuditEntry.objects.get(action="bundle_deleted")
    assert entry.username == "support" and "kunde.json" in entry.target
