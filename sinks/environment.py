"""`${VAR}` in destination settings, read from the environment once, at start.

Only upper-case names are environment variables (`${CRM_SECRET}`); lower-case ones
such as `${customer_id}` or `${profile.email}` are left for the email templates to
fill per message. A variable that is not set, or set but empty (`SMTP_HOST=` in an
env file), stops the start with its name, rather than sending mail to an empty host
or signing webhooks with an empty secret.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping

from rules.language.model import Definitions, Destination

VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


class MissingVariables(Exception):
    def __init__(self, missing: list[tuple[str, str, str]]) -> None:
        self.missing = missing
        lines = [f"destination {dest!r}: environment variable {name} is {state}" for dest, name, state in missing]
        super().__init__("\n".join(lines))


def _expand(value: object, environ: Mapping[str, str], missing: dict[str, str]) -> object:
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            found = environ.get(name)
            if found is None or not found.strip():
                missing[name] = "not set" if found is None else "set but empty"
                return ""
            return found
        return VARIABLE.sub(replace, value)
    if isinstance(value, dict):
        return {key: _expand(item, environ, missing) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, environ, missing) for item in value]
    return value


def resolve_destinations(definitions: Definitions, environ: Mapping[str, str] | None = None) -> dict[str, Destination]:
    """Every destination with its settings expanded; raise MissingVariables listing the
    gaps of destinations some action uses (an unused one may stay unconfigured)."""
    environ = os.environ if environ is None else environ
    used = {action.destination for segment in definitions.segments.values()
            for action in segment.on_enter + segment.on_exit}
    resolved: dict[str, Destination] = {}
    problems: list[tuple[str, str, str]] = []
    for name, destination in sorted(definitions.destinations.items()):
        missing: dict[str, str] = {}
        settings = _expand(destination.settings, environ, missing)
        if name in used:
            problems.extend((name, variable, missing[variable]) for variable in sorted(missing))
        assert isinstance(settings, dict)
        resolved[name] = Destination(name, destination.type, settings, destination.origin)
    if problems:
        raise MissingVariables(problems)
    return resolved
