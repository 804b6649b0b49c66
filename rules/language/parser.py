"""Text -> syntax tree, with Lark (LALR), never Python `eval`.

Parse errors are turned into `SyntaxProblem` carrying the line and column inside the
expression so the loader can report `file:line: message` for the YAML scalar.
"""
from __future__ import annotations

import ast as python_ast
import re
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from rules.language import ast
from rules.timeutil import parse_duration

KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false"}


class SyntaxProblem(ValueError):
    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = (Path(__file__).with_name("grammar.lark")).read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def _where(meta_or_token: object) -> dict[str, int]:
    line = getattr(meta_or_token, "line", 1) or 1
    column = getattr(meta_or_token, "column", 1) or 1
    return {"line": line, "column": column}


@v_args(meta=True)
class _ToAst(Transformer):  # type: ignore[type-arg]
    def __init__(self, source: str) -> None:
        super().__init__()
        self._source = source

    def _pos(self, meta: object) -> dict[str, object]:
        start = getattr(meta, "start_pos", None)
        end = getattr(meta, "end_pos", None)
        text = self._source[start:end] if start is not None else ""
        return {**_where(meta), "text": text}

    def or_(self, meta, items):  # type: ignore[no-untyped-def]
        if len(items) == 1:
            return items[0]
        return ast.Logical("or", tuple(items), **self._pos(meta))

    def and_(self, meta, items):  # type: ignore[no-untyped-def]
        if len(items) == 1:
            return items[0]
        return ast.Logical("and", tuple(items), **self._pos(meta))

    def not_(self, meta, items):  # type: ignore[no-untyped-def]
        return ast.Not(items[0], **self._pos(meta))

    def compare(self, meta, items):  # type: ignore[no-untyped-def]
        left, op, right = items
        return ast.Compare(str(op), left, right, **self._pos(meta))

    def in_(self, meta, items):  # type: ignore[no-untyped-def]
        return ast.Membership(items[0], items[1], False, **self._pos(meta))

    def not_in(self, meta, items):  # type: ignore[no-untyped-def]
        return ast.Membership(items[0], items[1], True, **self._pos(meta))

    def is_null(self, meta, items):  # type: ignore[no-untyped-def]
        return ast.IsNull(items[0], False, **self._pos(meta))

    def is_not_null(self, meta, items):  # type: ignore[no-untyped-def]
        return ast.IsNull(items[0], True, **self._pos(meta))

    def arith(self, meta, items):  # type: ignore[no-untyped-def]
        left, op, right = items
        return ast.Arithmetic(str(op), left, right, **self._pos(meta))

    def negate(self, meta, items):  # type: ignore[no-untyped-def]
        return ast.Negate(items[0], **self._pos(meta))

    def duration(self, meta, items):  # type: ignore[no-untyped-def]
        return ast.Literal(parse_duration(str(items[0])), "duration", **self._pos(meta))

    def number(self, meta, items):  # type: ignore[no-untyped-def]
        text = str(items[0])
        value: float | int = float(text) if any(c in text for c in ".eE") else int(text)
        return ast.Literal(value, "number", **self._pos(meta))

    def string(self, meta, items):  # type: ignore[no-untyped-def]
        raw = str(items[0])
        try:
            value = python_ast.literal_eval(raw)
        except (SyntaxError, ValueError):  # an escape that cannot be read, such as "C:\Users"
            raise SyntaxProblem(f"string {raw} holds a backslash escape that cannot be read "
                                "(write a backslash itself as \\\\)", **_where(meta)) from None
        return ast.Literal(value, "string", **self._pos(meta))

    def true(self, meta, items):  # type: ignore[no-untyped-def]
        return ast.Literal(True, "bool", **self._pos(meta))

    def false(self, meta, items):  # type: ignore[no-untyped-def]
        return ast.Literal(False, "bool", **self._pos(meta))

    def null(self, meta, items):  # type: ignore[no-untyped-def]
        return ast.Literal(None, "null", **self._pos(meta))

    def list(self, meta, items):  # type: ignore[no-untyped-def]
        return ast.ListLiteral(tuple(i for i in items if i is not None), **self._pos(meta))

    def dotted(self, meta, items):  # type: ignore[no-untyped-def]
        parts = tuple(str(t) for t in items)
        for part in parts:
            if part in KEYWORDS:
                raise SyntaxProblem(f"'{part}' is a keyword, not a name", **_where(meta))
        return ast.Name(parts, **self._pos(meta))

    def call(self, meta, items):  # type: ignore[no-untyped-def]
        name, arguments = items
        args: list[ast.Node] = []
        kwargs: list[tuple[str, ast.Node]] = []
        for kind, value, where in arguments or []:  # `where`: the argument's own place, for its errors
            if kind == "positional":
                if kwargs:
                    raise SyntaxProblem(f"{name}(): positional argument after keyword argument", **where)
                args.append(value)
            elif any(key == value[0] for key, _ in kwargs):
                raise SyntaxProblem(f"{name}(): {value[0]}= given twice", **where)
            else:
                kwargs.append(value)
        return ast.Call(str(name), tuple(args), tuple(kwargs), **self._pos(meta))

    def arguments(self, meta, items):  # type: ignore[no-untyped-def]
        return items

    def positional(self, meta, items):  # type: ignore[no-untyped-def]
        return ("positional", items[0], _where(meta))

    def keyword(self, meta, items):  # type: ignore[no-untyped-def]
        return ("keyword", (str(items[0]), items[1]), _where(items[0]))


def _describe(token: Token | None) -> str:
    if token is None or token.type == "$END":
        return "end of expression"
    return repr(str(token))


def _hint(text: str, token: object) -> str:
    """What the writer probably meant, for two mistakes carried over from SQL."""
    word = str(token) if token is not None else ""
    if word.lower() in KEYWORDS and word != word.lower():
        return f" (the words of the language are lower case: {word.lower()!r})"
    if word == "," and re.search(r"\bin\s*\(", text[:getattr(token, "start_pos", 0) or 0]):
        return " (a list is written in square brackets: x in [\"US\", \"CA\"])"
    return ""


def parse_expression(text: str) -> ast.Node:
    """Parse one condition or trait expression; raises SyntaxProblem."""
    if not isinstance(text, str) or not text.strip():
        raise SyntaxProblem("empty expression", 1, 1)
    try:
        tree = _lark().parse(text)
    except UnexpectedCharacters as exc:
        raise SyntaxProblem(
            f"syntax error: unexpected character {text[exc.pos_in_stream]!r}", exc.line, exc.column
        ) from None
    except UnexpectedEOF as exc:
        raise SyntaxProblem("syntax error: expression ends too early", exc.line, exc.column) from None
    except UnexpectedToken as exc:
        raise SyntaxProblem(
            f"syntax error: unexpected {_describe(exc.token)}{_hint(text, exc.token)}", exc.line, exc.column
        ) from None
    except UnexpectedInput as exc:  # pragma: no cover - other Lark input errors
        raise SyntaxProblem(f"syntax error: {exc}", getattr(exc, "line", 1), 1) from None
    try:
        return _ToAst(text).transform(tree)
    except Exception as exc:  # VisitError wraps SyntaxProblem raised in callbacks
        inner = getattr(exc, "orig_exc", exc)
        if isinstance(inner, SyntaxProblem):
            raise inner from None
        raise
