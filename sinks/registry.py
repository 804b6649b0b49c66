"""Destination type -> sink class, and the sinks of a set of definitions."""
from __future__ import annotations

import logging
from collections.abc import Mapping

from rules.language.model import Definitions, Destination
from sinks.base import PermanentError, Sink
from sinks.context import SinkContext
from sinks.csv_export import CsvSink
from sinks.email import EmailSink
from sinks.redis_sink import RedisSink
from sinks.webhook import WebhookSink

log = logging.getLogger("segmenter.sinks")

SINK_TYPES: dict[str, type[RedisSink] | type[EmailSink] | type[WebhookSink] | type[CsvSink]] = {
    "redis": RedisSink,
    "smtp": EmailSink,
    "webhook": WebhookSink,
    "csv": CsvSink,
}


def build_sinks(destinations: Mapping[str, Destination], context: SinkContext) -> dict[str, Sink]:
    """One sink per destination; a setting a sink cannot read once `${VAR}` is filled in
    (`port: "${SMTP_PORT}"` with SMTP_PORT=twenty-five) raises ValueError naming it."""
    sinks: dict[str, Sink] = {}
    for name, dest in destinations.items():
        try:
            sinks[name] = SINK_TYPES[dest.type](dest, context)
        except ValueError as exc:
            raise ValueError(f"destination {name!r}: a setting cannot be read ({exc}); settings: "
                             f"{', '.join(f'{k}={v!r}' for k, v in dest.settings.items() if k not in SECRET)}") from None
    return sinks


SECRET = {"secret", "password"}
"""Settings never printed in an error."""


def check_templates(definitions: Definitions, sinks: Mapping[str, Sink]) -> list[str]:
    """Email actions whose template file is missing: warned at start (the actions would be
    dead-lettered, and can be redriven once the template exists)."""
    problems: list[str] = []
    for segment in definitions.segments.values():
        for action in segment.on_enter + segment.on_exit:
            sink = sinks.get(action.destination)
            template = action.params.get("template")
            if isinstance(sink, EmailSink) and isinstance(template, str):
                try:
                    text, html = sink.templates.paths(sink.name, template)
                except PermanentError as exc:
                    problems.append(f"{action.origin}: segment {segment.name}: {exc}")
                    continue
                if not text.is_file() and not html.is_file():
                    problems.append(f"{action.origin}: segment {segment.name}: no email template {text} or {html}")
    return problems


async def start_all(sinks: Mapping[str, Sink], context: SinkContext | None = None) -> None:
    """Start every sink; warn (not stop) about a Redis that does not answer, since its
    actions are retried and then dead-lettered, never lost."""
    for sink in sinks.values():
        await sink.start()
    for url, error in await context.redis.unreachable() if context is not None else []:
        log.warning("Redis %s does not answer (%s); group, pricing and email actions will be retried, "
                    "then dead-lettered until it does (check --redis-url)", url, error)


async def close_all(sinks: Mapping[str, Sink], context: SinkContext) -> None:
    for sink in sinks.values():
        try:
            await sink.close()
        except Exception as exc:  # noqa: BLE001 - closing must go on for the others
            log.warning("closing %s: %s", sink.name, exc)
    await context.redis.close()
    close = getattr(context.profile_lookup, "close", None)
    if close is not None:
        await close()
