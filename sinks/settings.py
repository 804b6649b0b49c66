"""Settings of `segmenter sinks` and `segmenter redrive`, beyond the worker's.

Both commands take the worker's flags and `SEGMENTER_*` variables (brokers,
definitions, changes topic, Kafka security) from `stream.settings`, plus these, in
the same way: `--redis-url` is `SEGMENTER_REDIS_URL`, and flags win.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from sinks.retry import RetryPolicy
from stream import settings as worker_settings


@dataclass
class SinkSettings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "segmenter:"
    sink_dlq_topic: str = "segmenter-sink-dlq"
    sinks_group: str = "segmenter-sinks"
    redrive_group: str = "segmenter-redrive"
    templates: Path = Path("templates")
    max_retries: int = 5
    retry_base: float = 0.2
    retry_max: float = 10.0
    attempt_budget: float = 60.0
    sink_batch: int = 1000
    profile_url: str = ""
    metrics_port: int = 0

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.retry_base, self.retry_max, self.attempt_budget)


HELP = {
    "redis_url": "Redis for group and pricing destinations and email markers",
    "redis_prefix": "prefix of every Redis key the sinks write",
    "sink_dlq_topic": "where actions go after the last retry",
    "sinks_group": "Kafka consumer group of `segmenter sinks`",
    "redrive_group": "Kafka consumer group of `segmenter redrive` on the dead-letter topic",
    "templates": "email templates folder: TEMPLATES/<destination>/<template>.txt or .html",
    "max_retries": "retries of a failing action before it is dead-lettered",
    "retry_base": "seconds before the first retry; doubles each retry, with jitter",
    "retry_max": "longest wait between two retries, in seconds",
    "attempt_budget": "seconds one attempt at a destination goes on starting messages; the rest wait for the next "
                      "attempt, so a hung destination cannot hold a round for long",
    "sink_batch": "most change events handled per round",
    "profile_url": "base URL answering GET /customers/<id> with profile and traits for email templates",
    "metrics_port": "serve Prometheus metrics on this port (0: off)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's flags, then the sinks' own."""
    worker_settings.add_arguments(parser)
    worker_settings.add_fields(parser, SinkSettings, HELP)


def from_arguments(args: argparse.Namespace | None = None,
                   environ: dict[str, str] | None = None) -> tuple[worker_settings.Settings, SinkSettings]:
    environ = dict(os.environ) if environ is None else environ
    sink = SinkSettings()
    worker_settings.fill(sink, args, environ)
    for name, smallest, what in (("max_retries", 0, "0 or more"), ("sink_batch", 1, "1 or more"),
                                 ("attempt_budget", 1e-9, "above 0 seconds (0 would start no message)"),
                                 ("retry_base", 0, "0 or more seconds"), ("retry_max", 0, "0 or more seconds")):
        if getattr(sink, name) < smallest:
            raise ValueError(f"--{name.replace('_', '-')} must be {what}, not {getattr(sink, name)}")
    return worker_settings.from_arguments(args, environ), sink
