"""Plain-text command output: tables (left-aligned text, right-aligned numbers) and counts."""
from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_cell(value) for value in row] for row in rows]
    numeric = [all(_is_number(row[i]) for row in rows) if rows else False for i in range(len(headers))]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    lines = []
    for line in cells:
        parts = [text.rjust(width) if right else text.ljust(width) for text, width, right in zip(line, widths, numeric)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _cell(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) or (isinstance(value, str) and value.rstrip("%").replace(".", "").replace(",", "").isdigit())


def counted(count: int, noun: str) -> str:
    """`1 event`, `2 events`, `1,000 bad lines`."""
    return f"{count:,} {noun if count == 1 else noun + 's'}"
