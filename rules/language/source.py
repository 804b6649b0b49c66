"""YAML files -> plain data plus the line of every key, for `file:line` messages.

PyYAML's constructors drop positions and silently keep the last of duplicate keys;
walking the composed node tree keeps both the line numbers and the duplicates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

Key = tuple[object, ...]


@dataclass(frozen=True)
class Problem:
    """One definition error, printed as `file:line: message`."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:  # line 0: about the file or folder as a whole
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


@dataclass
class SourceFile:
    path: str
    data: object
    lines: dict[Key, int] = field(default_factory=dict)
    # For scalars written as block scalars (`|` / `>`), the first content line.
    value_lines: dict[Key, int] = field(default_factory=dict)
    text: str = ""  # the file as read
    # Scalars: (start index, end index in `text`, YAML style, line of the start).
    spans: dict[Key, tuple[int, int, str, int]] = field(default_factory=dict)

    def line(self, key: Key) -> int:
        """Line of the deepest known prefix of `key` (1-based)."""
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return 1

    def value_line(self, key: Key) -> int:
        return self.value_lines.get(key, self.line(key))

    def joined(self, key: Key) -> bool:
        """Whether the scalar at `key` was written over several lines that reading joined
        (folded, plain or quoted): only then do its positions need `source_line`."""
        span = self.spans.get(key)
        return span is not None and span[2] != "|" and "\n" in self.text[span[0]:span[1]].rstrip("\n")

    def source_line(self, key: Key, value: str, line: int, column: int) -> int:
        """The file line of a position (1-based line and column) in the scalar `value`
        read at `key` (see `source_position`)."""
        return self.source_position(key, value, line, column)[0]

    def source_position(self, key: Key, value: str, line: int, column: int) -> tuple[int, int]:
        """The file line and column of a position (1-based line and column) in the
        scalar `value` read at `key`, as an editor shows them. Folded (`>`), plain and
        quoted scalars join their lines with spaces and literal (`|`) ones drop their
        indentation, so a position in the value is found again by counting the
        characters that are not blank, which reading keeps in order."""
        span = self.spans.get(key)
        if span is None:
            return self.value_line(key) + line - 1, column
        start, end, style, first_line = span
        offset = sum(len(text) + 1 for text in value.split("\n")[:line - 1]) + column - 1
        wanted = sum(1 for char in value[:offset] if not char.isspace())
        raw = self.text[start:end]
        skip = raw.find("\n") + 1 if style in (">", "|") else 1 if style in ("'", '"') else 0  # header or quote
        seen, found, last = 0, -1, skip - 1
        for index in range(skip, len(raw)):
            if not raw[index].isspace():
                if seen == wanted:
                    found = index
                    break
                seen, last = seen + 1, index
        if found < 0:  # past the end (an expression that ends too early): just after its last character
            found = last + 1
        line_start = self.text.rfind("\n", 0, start + found) + 1
        return first_line + raw[:found].count("\n"), start + found - line_start + 1


class _Walker:
    def __init__(self, path: str, loader: yaml.SafeLoader) -> None:
        self.file = SourceFile(path, None)
        self.loader = loader
        self.problems: list[Problem] = []
        self.values = 0

    def walk(self, node: yaml.Node, key: Key) -> object:
        self.values += 1
        if self.values > MAX_VALUES:
            raise _TooMany
        line = node.start_mark.line + 1
        self.file.lines.setdefault(key, line)
        if isinstance(node, yaml.MappingNode):
            result: dict[object, object] = {}
            written = sum(1 for key_node, _ in node.value if key_node.tag != MERGE_TAG)
            for position, (key_node, value_node) in enumerate(self._merged(node, set())):
                name = self._key(key_node)
                if name is _NO_KEY:
                    continue
                child = key + (name,)
                if name in result:
                    if position < written:  # a key merged in (`<<: *anchor`) yields to one written here
                        self._problem(key_node, f"duplicate key {name!r}")
                    continue
                self.file.lines[child] = key_node.start_mark.line + 1
                result[name] = self.walk(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, key + (index,)) for index, item in enumerate(node.value)]
        if isinstance(node, yaml.ScalarNode):
            self.file.value_lines[key] = line + 1 if node.style in ("|", ">") else line
            self.file.spans[key] = (node.start_mark.index, node.end_mark.index, node.style or "", line)
        return self._construct(node)

    def _construct(self, node: yaml.Node) -> object:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:  # a tag it does not know (`!custom`, `!!python/...`), bad `!!binary`
            self._problem(node, f"cannot read this value: {getattr(exc, 'problem', None) or exc}")
            return None

    def _key(self, node: yaml.Node) -> object:
        name = self._construct(node)
        if isinstance(name, (list, dict, set)) or not isinstance(node, yaml.ScalarNode):
            self._problem(node, "a key must be a plain name, not a list or a mapping")
            return _NO_KEY
        return name

    def _merged(self, node: yaml.Node, seen: set[int]) -> list[tuple[yaml.Node, yaml.Node]]:
        """The pairs of a mapping: those written in it, then those its merge keys (`<<`)
        bring in, of one mapping or a list of them, earlier ones first; merges inside
        them are followed (each mapping once)."""
        if isinstance(node, yaml.SequenceNode):
            return [pair for item in node.value for pair in self._merged(item, seen)]
        if not isinstance(node, yaml.MappingNode):
            self._problem(node, "'<<' merges a mapping, or a list of them (e.g. <<: *defaults)")
            return []
        if id(node) in seen:
            return []
        seen.add(id(node))
        own = [(k, v) for k, v in node.value if k.tag != MERGE_TAG]
        for k, v in node.value:
            if k.tag == MERGE_TAG:
                own += self._merged(v, seen)
        return own

    def _problem(self, node: yaml.Node, message: str) -> None:
        self.problems.append(Problem(self.file.path, node.start_mark.line + 1, message))


def read_yaml(path: Path, display: str) -> tuple[SourceFile, list[Problem]]:
    """Parse one YAML file; syntax errors come back as problems, never exceptions."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        return SourceFile(display, None), [Problem(display, line, f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                                                                  "save the file as UTF-8")]
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        line, message = _yaml_problem(exc, text)
        return SourceFile(display, None), [Problem(display, line, f"YAML syntax error: {message}")]
    except yaml.YAMLError as exc:  # e.g. characters YAML does not allow, which come without a mark
        return SourceFile(display, None), [Problem(display, 1, f"YAML error: {exc}")]
    except RecursionError:
        return SourceFile(display, None), [Problem(display, 1, "YAML nested too deeply")]
    finally:
        loader.dispose()
    walker = _Walker(display, loader)
    walker.file.text = text
    try:
        walker.file.data = {} if root is None else walker.walk(root, ())
    except RecursionError:
        return SourceFile(display, None), [Problem(display, 1, "YAML nested too deeply")]
    except _TooMany:
        return SourceFile(display, None), [Problem(display, 1, f"YAML holds more than {MAX_VALUES:,} values once its "
                                                               "aliases (*name) are written out: is an alias repeated "
                                                               "inside what another alias repeats?")]
    return walker.file, walker.problems


def _yaml_problem(exc: yaml.MarkedYAMLError, text: str) -> tuple[int, str]:
    """The line and words of a YAML error. A quote or bracket left open is only noticed
    where the file ends, a line past the last one: it is reported where it was opened,
    the place PyYAML gives as its context; elsewhere the context is named beside it."""
    problem, mark, context, opened = exc.problem or "cannot read", exc.problem_mark, exc.context, exc.context_mark
    if opened is None or not context:
        return (mark.line + 1 if mark else 1), problem
    if mark is None or not text[mark.index:].strip():
        return (opened.line + 1,
                f"{problem} {context} that starts at column {opened.column + 1}: is a quote or bracket left open?")
    if opened.line == mark.line:
        return mark.line + 1, f"{problem} ({context})"
    return mark.line + 1, f"{problem} ({context} that starts on line {opened.line + 1})"


MAX_VALUES = 200_000
"""Values (mappings, lists, scalars) a definitions file may hold with its aliases
written out: each alias is walked again for its line numbers, so a few lines of
aliases of aliases could otherwise expand to billions."""


class _TooMany(Exception):
    """A file beyond `MAX_VALUES`."""


MERGE_TAG = "tag:yaml.org,2002:merge"
_NO_KEY = object()
