"""transports/ speaks English message ids only: the panel translates them (xmailadmin/texts.py).

Every string literal of every module under transports/ (relay/ and scripts/ too) is
read; a German word or an umlaut in one means a sentence that skipped the catalogue.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

TRANSPORTS = Path(__file__).resolve().parents[2] / "transports"
# Umlauts and ß, and German words that are no English words (not " die ": the verb).
GERMAN = re.compile(
    r"[äöüÄÖÜß]|\b(?:der|das|den|dem|nicht|kein|keine|ist|und|oder|wird|wurde|werden|sind"
    r"|Konto|Kontos|Passwort|Datei|Zertifikat|Server des|geschrieben|setzen|gesetzt"
    r"|läuft|Fehler|Befehl)\b"
)
# The test mail itself, which the recipient reads: its German version and the umlauts
# that check the encoding are the mail's content, not a sentence of the program.
MAIL_TEXT = ("message.py", "_TEXT")


def modules() -> list[Path]:
    return sorted(TRANSPORTS.rglob("*.py"))


def mail_text_lines(tree: ast.Module) -> range:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == MAIL_TEXT[1] for t in node.targets
        ):
            return range(node.lineno, (node.end_lineno or node.lineno) + 1)
    raise AssertionError(f"{MAIL_TEXT[0]} has no {MAIL_TEXT[1]}: update this test")


def german_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    allowed = mail_text_lines(tree) if path.name == MAIL_TEXT[0] else range(0)
    found = []
    for node in ast.walk(tree):
        is_string = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_string and node.lineno not in allowed and GERMAN.search(node.value):
            found.append((node.lineno, node.value[:80]))
    return found


def test_the_scan_covers_the_relay_code_and_finds_german():
    names = {p.relative_to(TRANSPORTS).as_posix() for p in modules()}
    assert {"base.py", "catalogue.py", "relay/config.py", "relay/postfix.py"} <= names
    assert GERMAN.search("das Konto nennt Port 465") and GERMAN.search("zurück")
    assert not GERMAN.search("the server rejected user or password, so it may die")


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.relative_to(TRANSPORTS).as_posix())
def test_no_string_of_transports_is_german(path):
    assert german_literals(path) == []
