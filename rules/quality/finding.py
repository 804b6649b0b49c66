"""One lint warning, printed as `file:line: warning: message [check]`."""
from __future__ import annotations

from dataclasses import dataclass

from rules.language.model import Origin


@dataclass(frozen=True)
class Finding:
    """`check` names the rule (for `--ignore` and machines); `segment` is None for file-wide findings."""

    check: str
    message: str
    origin: Origin | None = None
    segment: str | None = None

    def __str__(self) -> str:
        where = f"{self.origin}: " if self.origin is not None else ""
        return f"{where}warning: {self.message} [{self.check}]"

    def to_dict(self) -> dict[str, object]:
        return {
            "check": self.check,
            "message": self.message,
            "file": self.origin.file if self.origin else None,
            "line": self.origin.line if self.origin else None,
            "segment": self.segment,
        }

    def sort_key(self) -> tuple[str, int, str]:
        return (self.origin.file if self.origin else "", self.origin.line if self.origin else 0, self.message)
