"""One judged observation of a check: what was looked at, pass/warn/fail, a sentence.

The server check and the sender-domain check both answer in findings, so the CLI,
the panel and a support bundle show them alike. ``text`` is a :class:`Text`, so the
panel words it in the reader's language; ``details`` holds the raw values it judged
(a record, a version list), shown beside it and kept in JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .texts import Text


class Level(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


_RANK = {Level.PASS: 0, Level.WARN: 1, Level.FAIL: 2}


@dataclass(frozen=True)
class Finding:
    check: str
    level: Level
    text: Text
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{check, level, text, text_data, **details}``: the sentence in English and
        as data for another language."""
        return {
            **self.details,
            "check": self.check,
            "level": self.level.value,
            "text": str(self.text),
            "text_data": self.text.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        details = {
            k: v for k, v in data.items() if k not in ("check", "level", "text", "text_data")
        }
        return cls(
            str(data["check"]), Level(data["level"]), Text.from_dict(data["text_data"]), details
        )


def worst(findings: Iterable[Finding]) -> Level:
    """The most severe level among ``findings`` (pass when there are none)."""
    return max((f.level for f in findings), key=_RANK.__getitem__, default=Level.PASS)
