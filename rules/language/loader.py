"""Folder of YAML files -> one validated, versioned `Definitions`.

All files are merged; every problem in every file is collected before failing, so a
marketer fixing definitions sees the whole list at once, as `file:line: message`.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from rules.language.model import ACTION_KINDS, Action, Definitions, Destination, Origin, Segment, Trait
from rules.language.parser import KEYWORDS, SyntaxProblem, parse_expression
from rules.language.source import Problem, SourceFile, read_yaml
from rules.language.ast import Node, canonical, children

SECTIONS = ("traits", "segments", "tiers", "destinations")
SEGMENT_KEYS = {"description", "when", "exit_when", "holdout", "on_enter", "on_exit"}
LEVEL_KEYS = {"name", "description", "when", "on_enter", "on_exit"}
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
RESERVED_TRAIT_NAMES = KEYWORDS | {"now", "profile"}
"""Names a condition can never reach as a trait: the words of the language, the clock
and the profile."""
HOLDOUT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")


class DefinitionError(Exception):
    """Raised with every problem found; `str()` is one `file:line: message` per line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


def definition_files(path: Path) -> list[Path]:
    """The YAML files of a definitions folder, subfolders included. Names starting with
    a dot are left out, files and folders alike: a segments repository's
    `.github/workflows/*.yml` is no definition, nor is an editor's `.#shop.yaml` lock."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(path).parts))


class _Builder:
    def __init__(self) -> None:
        self.defs = Definitions()
        self.problems: list[Problem] = []
        self.normalised: dict[str, dict[str, object]] = {s: {} for s in SECTIONS}
        self.expressions: dict[tuple[object, ...], Node] = {}  # place in a file -> its parsed expression
        self._origins: dict[tuple[str, str], Origin] = {}
        self._invalid: set[tuple[str, str]] = set()  # (kind, name) refused for its spelling

    def problem(self, file: SourceFile, key: tuple[object, ...], message: str) -> None:
        self.problems.append(Problem(file.path, file.line(key), message))

    def expression(self, file: SourceFile, key: tuple[object, ...], text: object) -> Node | None:
        if isinstance(text, bool) or isinstance(text, (int, float)):
            text = str(text).lower()
        if not isinstance(text, str):
            self.problem(file, key, "expected an expression (text)")
            return None
        try:
            tree = parse_expression(text)
            self.expressions[key] = tree
        except SyntaxProblem as exc:
            line, column = file.source_position(key, text, exc.line, exc.column)
            self.problems.append(Problem(file.path, line, f"{exc} (column {column})"))
            return None
        except RecursionError:
            self.problem(file, key, "expression nested too deeply")
            return None
        if file.joined(key):  # lines as in the file, which joining did not keep (see `source_line`)
            base = file.value_line(key)
            for node in _nodes(tree):
                object.__setattr__(node, "line", file.source_line(key, text, node.line, node.column) - base + 1)
        return tree

    def broken(self) -> set[tuple[str, str]]:
        """Names claimed whose definition was left out for its own errors."""
        kept = {"trait": self.defs.traits, "segment": self.defs.segments, "destination": self.defs.destinations}
        left_out = {(kind, name) for kind, name in self._origins if kind in kept and name not in kept[kind]}
        return left_out | self._invalid

    def claim(self, file: SourceFile, key: tuple[object, ...], namespace: str, name: object) -> bool:
        """Register a name once across all files; report duplicates with the first place."""
        if not isinstance(name, str) or not NAME.match(name):
            self.problem(file, key, f"invalid name {name!r}: use lowercase letters, digits and _")
            if isinstance(name, str):
                self._invalid.add((namespace, name))
            return False
        origin = Origin(file.path, file.line(key))
        first = self._origins.get((namespace, name))
        if first is not None:
            self.problem(file, key, f"duplicate {namespace} name {name!r} (first defined at {first})")
            return False
        self._origins[(namespace, name)] = origin
        return True

    def add_file(self, file: SourceFile) -> None:
        data = file.data
        if not isinstance(data, dict):
            self.problem(file, (), "expected a mapping with traits, segments, tiers, destinations")
            return
        for section, body in data.items():
            if isinstance(section, str) and section.startswith("x-"):
                continue  # room for YAML anchors to merge from (`x-defaults: &defaults`), as in compose files
            if section not in SECTIONS:
                self.problem(file, (section,), f"unknown section {section!r} (expected one of {', '.join(SECTIONS)})")
                continue
            if body is None:
                continue
            if not isinstance(body, dict):
                self.problem(file, (section,), f"{section} must be a mapping of names")
                continue
            self.normalised[section].update({str(k): v for k, v in body.items()})
            getattr(self, f"_{section}")(file, body)

    def _traits(self, file: SourceFile, body: dict[object, object]) -> None:
        for name, text in body.items():
            key = ("traits", name)
            if name in RESERVED_TRAIT_NAMES:
                meaning = {"now": "the clock", "profile": "the profile"}.get(name, "a word of the language")
                self.problem(file, key, f"{name!r} cannot name a trait: conditions read it as {meaning}")
            elif self.claim(file, key, "trait", name):
                expr = self.expression(file, key, text)
                if expr is not None:
                    self.defs.traits[str(name)] = Trait(str(name), expr, Origin(file.path, file.value_line(key)))

    def _segment(self, file: SourceFile, key: tuple[object, ...], name: str, spec: dict[object, object],
                 allowed: set[str], tier: str | None = None, rank: int = 0) -> None:
        for extra in sorted(set(map(str, spec)) - allowed):
            close = difflib.get_close_matches(extra, sorted(allowed), n=1)
            self.problem(file, key + (extra,), f"unknown key {extra!r} in segment {name!r}"
                         + (f" (did you mean {close[0]!r}?)" if close else f" (expected {', '.join(sorted(allowed))})"))
        if "when" not in spec:
            self.problem(file, key, f"segment {name!r} has no 'when' condition")
            return
        when = self.expression(file, key + ("when",), spec["when"])
        exit_when = None
        if spec.get("exit_when") is not None:
            exit_when = self.expression(file, key + ("exit_when",), spec["exit_when"])
        holdout = self._holdout(file, key + ("holdout",), spec.get("holdout"))
        on_enter = self._actions(file, key + ("on_enter",), spec.get("on_enter"))
        on_exit = self._actions(file, key + ("on_exit",), spec.get("on_exit"))
        description = spec.get("description") or ""
        if when is None or holdout is None or on_enter is None or on_exit is None:
            return
        self.defs.segments[name] = Segment(
            name, when, Origin(file.path, file.line(key)), str(description), exit_when, holdout,
            on_enter, on_exit, tier, rank,
            file.value_line(key + ("when",)), file.value_line(key + ("exit_when",)),
        )

    def _segments(self, file: SourceFile, body: dict[object, object]) -> None:
        for name, spec in body.items():
            key = ("segments", name)
            if not self.claim(file, key, "segment", name):
                continue
            if not isinstance(spec, dict):
                self.problem(file, key, f"segment {name!r} must be a mapping with at least 'when'")
                continue
            self._segment(file, key, str(name), spec, SEGMENT_KEYS)

    def _tiers(self, file: SourceFile, body: dict[object, object]) -> None:
        for name, levels in body.items():
            key = ("tiers", name)
            if not self.claim(file, key, "tier", name):
                continue
            if not isinstance(levels, list) or not levels:
                self.problem(file, key, f"tier {name!r} must be a list of levels {{name, when}}")
                continue
            names: list[str] = []
            for rank, level in enumerate(levels):
                level_key = key + (rank,)
                if not isinstance(level, dict) or "name" not in level:
                    self.problem(file, level_key, f"tier {name!r} level {rank + 1} needs a name and a when")
                    continue
                if self.claim(file, level_key, "segment", level["name"]):
                    # ranked among the levels kept: a level refused above (a duplicate name) must
                    # not shift the ones below, or a level would count itself among those above it
                    names.append(str(level["name"]))
                    self._segment(file, level_key, str(level["name"]), level, LEVEL_KEYS, str(name), len(names) - 1)
            self.defs.tiers[str(name)] = tuple(names)

    def _destinations(self, file: SourceFile, body: dict[object, object]) -> None:
        types = set(ACTION_KINDS.values())
        for name, spec in body.items():
            key = ("destinations", name)
            if not self.claim(file, key, "destination", name):
                continue
            given = spec.get("type") if isinstance(spec, dict) else None
            if not isinstance(given, str) or given not in types:
                what = f"has an unknown type {given!r}" if given is not None else "needs a type"
                self.problem(file, key, f"destination {name!r} {what}: one of {', '.join(sorted(types))}")
                continue
            settings = {str(k): v for k, v in spec.items() if k != "type"}
            self.defs.destinations[str(name)] = Destination(
                str(name), str(spec["type"]), settings, Origin(file.path, file.line(key))
            )

    def _holdout(self, file: SourceFile, key: tuple[object, ...], value: object) -> float | None:
        if value is None:
            return 0.0
        match = HOLDOUT.match(str(value)) if isinstance(value, str) else None
        share = float(match.group(1)) if match else None
        if share is None or not 0 <= share <= 100:
            self.problem(file, key, f"holdout must be a percentage such as 10%, got {value!r}")
            return None
        return share / 100

    def _actions(self, file: SourceFile, key: tuple[object, ...], value: object) -> tuple[Action, ...] | None:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem(file, key, "actions must be a list such as [{group: {add: vip}}]")
            return None
        actions: list[Action] = []
        for index, entry in enumerate(value):
            entry_key = key + (index,)
            if not isinstance(entry, dict) or len(entry) != 1:
                self.problem(file, entry_key, "each action is a mapping with one key, e.g. {email: {template: welcome}}")
                return None
            kind, params = next(iter(entry.items()))
            if kind not in ACTION_KINDS:
                self.problem(file, entry_key, f"unknown action {kind!r} (expected one of {', '.join(ACTION_KINDS)})")
                return None
            params = dict(params or {}) if isinstance(params, dict) or params is None else None
            if params is None:
                self.problem(file, entry_key, f"action {kind!r} needs a mapping of settings")
                return None
            destination = str(params.pop("destination", kind))
            actions.append(Action(str(kind), destination, params, Origin(file.path, file.line(entry_key))))
        return tuple(actions)

    def version(self) -> str:
        """A hash of what the files say, not of how: key order, comments, YAML style and
        the spelling of each expression (see `ast.canonical`) leave it as it is."""
        normalised = copy.deepcopy(self.normalised)
        for (section, name, *rest), tree in self.expressions.items():
            holder: Any = normalised[str(section)]
            place: object = str(name)
            for step in rest:
                holder, place = holder[place], step
            holder[place] = canonical(tree)
        text = orjson.dumps(normalised, option=orjson.OPT_SORT_KEYS, default=str)
        return hashlib.sha256(text).hexdigest()[:16]


def load_definitions(path: str | Path, *more: str | Path) -> Definitions:
    """Load, merge and validate every YAML file under `path` (and `more`, as a shell
    glob such as `segments/*.yaml` gives them); raise DefinitionError."""
    from rules.language.validate import validate

    roots = [Path(p) for p in (path, *more)]
    missing = [Problem(str(root), 0, "no such file or folder") for root in roots if not root.exists()]
    if missing:
        raise DefinitionError(missing)
    files = list(dict.fromkeys(file for root in roots for file in definition_files(root)))
    root = roots[0]
    if not files:
        raise DefinitionError([Problem(str(root), 0, "no .yaml or .yml files found")])
    builder = _Builder()
    for file_path in files:
        source, problems = read_yaml(file_path, str(file_path))
        builder.problems.extend(problems)
        if source.data is not None:
            builder.add_file(source)
    builder.defs.version = builder.version()
    builder.defs.broken = builder.broken()
    builder.problems.extend(validate(builder.defs))
    if not builder.problems and not builder.defs.segments:
        # an empty file (a config map mounted before it was filled in) would run a
        # worker that evaluates nothing and sinks that do nothing, all looking healthy
        place, line = (str(files[0]), 1) if len(files) == 1 else (str(root), 0)
        builder.problems.append(Problem(place, line, "no segments or tiers are defined: nothing could ever enter or "
                                                     "exit (add a 'segments:' or 'tiers:' mapping)"))
    if builder.problems:
        # the same mistake in a YAML anchor shared by several segments, or a name
        # misspelt twice on one line, is one problem: said once
        raise DefinitionError(list(dict.fromkeys(builder.problems)))
    return builder.defs


def _nodes(tree: Node) -> Iterator[Node]:
    """Every node of an expression tree."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(children(node))
