"""Email templates: `<templates>/<destination>/<name>.txt` and/or `.html`.

The first line is `Subject: ...`; the rest is the body. Placeholders are
`string.Template`'s `$name` / `${name}`, with dotted names for nested values:
`${customer_id}`, `${segment}`, `${profile.first_name}`, `${traits.lifetime_spend}`.
`string.Template` was chosen over `str.format` on purpose: it only substitutes
names, so a template (edited by marketers) cannot reach attributes of Python
objects. A name with no value renders empty and is reported by `Rendered.missing`;
values are HTML-escaped in `.html` bodies.
"""
from __future__ import annotations

import html
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rules.language.model import is_template_name
from sinks.base import PermanentError


class TemplateMissing(PermanentError):
    pass


class _Template(string.Template):
    idpattern = r"(?a:[_a-z][_a-z0-9]*(?:\.[_a-z0-9]+)*)"


class _Values(dict[str, str]):
    """Renders an unknown name as empty and remembers it."""

    def __init__(self, values: Mapping[str, str], escape: bool) -> None:
        super().__init__((k, html.escape(v) if escape else v) for k, v in values.items())
        self.missing: set[str] = set()

    def __missing__(self, key: str) -> str:
        self.missing.add(key)
        return ""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str | None
    html: str | None
    missing: frozenset[str] = field(default_factory=frozenset)


def flatten(value: object, prefix: str = "") -> dict[str, str]:
    """Nested mappings to dotted names; lists joined with ', '; None as empty."""
    if isinstance(value, Mapping):
        flat: dict[str, str] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, (list, tuple, set)):
        return {prefix: ", ".join(str(item) for item in value)}
    if isinstance(value, bool):
        return {prefix: "true" if value else "false"}
    return {prefix: "" if value is None else str(value)}


def _split(text: str, path: Path) -> tuple[str, str]:
    first, _, body = text.partition("\n")
    if not first.lower().startswith("subject:"):
        raise PermanentError(f"{path}: the first line must be 'Subject: ...'")
    return first.split(":", 1)[1].strip(), body.lstrip("\n")


class TemplateFolder:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[tuple[str, str], tuple[str, str | None, str | None]] = {}

    def paths(self, destination: str, name: str) -> tuple[Path, Path]:
        if not is_template_name(name):
            raise PermanentError(f"invalid template name {name!r}")
        folder = self.root / destination
        return folder / f"{name}.txt", folder / f"{name}.html"

    def load(self, destination: str, name: str) -> tuple[str, str | None, str | None]:
        """(subject, text body, html body); cached once read."""
        cached = self._cache.get((destination, name))
        if cached is not None:
            return cached
        text_path, html_path = self.paths(destination, name)
        parts = {path: _split(path.read_text(encoding="utf-8"), path) for path in (text_path, html_path) if path.is_file()}
        if not parts:
            raise TemplateMissing(f"no template {text_path} or {html_path}")
        subject = next(iter(parts.values()))[0]
        loaded = (subject, parts[text_path][1] if text_path in parts else None,
                  parts[html_path][1] if html_path in parts else None)
        self._cache[(destination, name)] = loaded
        return loaded

    def render(self, destination: str, name: str, values: Mapping[str, str]) -> Rendered:
        subject, text, body = self.load(destination, name)
        plain, escaped = _Values(values, escape=False), _Values(values, escape=True)
        try:
            return Rendered(
                _Template(subject).substitute(plain).replace("\n", " "),
                _Template(text).substitute(plain) if text is not None else None,
                _Template(body).substitute(escaped) if body is not None else None,
                frozenset(plain.missing | escaped.missing),
            )
        except ValueError as exc:  # "$5" instead of "$$5"
            raise PermanentError(f"template {destination}/{name}: {exc}") from None


def render_text(text: str, values: Mapping[str, str]) -> str:
    """One setting (such as an email's `to`) rendered with the same placeholders."""
    return _Template(text).substitute(_Values(values, escape=False))
