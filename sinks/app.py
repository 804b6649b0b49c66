"""What `segmenter sinks` and `segmenter redrive` both set up before touching Kafka:
definitions, destinations with `${VAR}` filled in, sinks, retry policy, counters."""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, start_http_server

from rules import DefinitionError, load_definitions
from rules.language.model import Definitions
from sinks.base import Sink
from sinks.context import SinkContext
from sinks.dispatch import Dispatcher
from sinks.environment import MissingVariables, resolve_destinations
from sinks.profiles import HttpProfileLookup
from sinks.registry import build_sinks, check_templates
from sinks.settings import SinkSettings
from sinks.stats import SinkStats, StatsCollector
from stream.settings import Settings

log = logging.getLogger("segmenter.sinks")


class SetupError(Exception):
    """Why the command cannot start, in words for the operator."""


@dataclass
class Prepared:
    definitions: Definitions
    context: SinkContext
    sinks: dict[str, Sink]
    stats: SinkStats
    dispatcher: Dispatcher


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def prepare(settings: Settings, sink_settings: SinkSettings) -> Prepared:
    try:
        definitions = load_definitions(settings.segments)
    except DefinitionError as exc:
        raise SetupError(f"{exc}\nnot started: fix the definitions above") from None
    try:
        destinations = resolve_destinations(definitions)
    except MissingVariables as exc:
        raise SetupError(f"{exc}\nnot started: set the variables above") from None
    for url in {sink_settings.redis_url, *(str(d.settings["url"]) for d in destinations.values()
                                         if d.type == "redis" and d.settings.get("url"))}:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise SetupError(f"Redis URL {url!r} (--redis-url or a destination's url:) must start with "
                             "redis://, rediss:// or unix://, e.g. redis://127.0.0.1:6379/0\nnot started")
    lookup = HttpProfileLookup(sink_settings.profile_url, settings.api_token) if sink_settings.profile_url else None
    context = SinkContext(sink_settings.redis_url, sink_settings.redis_prefix, sink_settings.templates, lookup)
    sinks = build_sinks(destinations, context)
    for name, destination in sorted(destinations.items()):
        to = str(destination.settings.get("to") or "${profile.email}")
        if destination.type == "smtp" and lookup is None and ("${profile." in to or "${traits." in to):
            log.warning("destination %r: to %r needs --profile-url (a service answering GET /customers/<id>); "
                        "without it, its emails are dead-lettered for want of a recipient", name, to)
    for problem in check_templates(definitions, sinks):
        log.warning("%s (those emails will be dead-lettered until it exists)", problem)
    stats = SinkStats()
    if sink_settings.metrics_port:
        registry = CollectorRegistry()
        registry.register(StatsCollector(stats))
        start_http_server(sink_settings.metrics_port, registry=registry)
    return Prepared(definitions, context, sinks, stats, Dispatcher(sinks, sink_settings.retry_policy(), stats))


def prepare_from_arguments(args: object) -> tuple[Settings, SinkSettings, Prepared] | None:
    """What both `sinks` and `redrive` do first; None (after printing why) on a setup error."""
    from sinks import settings as sink_settings_module

    configure_logging()
    try:
        settings, sink = sink_settings_module.from_arguments(args)  # type: ignore[arg-type]
        return settings, sink, prepare(settings, sink)
    except (SetupError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return None
