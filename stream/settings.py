"""Worker settings from flags and `SEGMENTER_*` environment variables (flags win)."""
from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass
class Settings:
    brokers: list[str] = field(default_factory=lambda: ["kafka://127.0.0.1:9092"])
    segments: Path = Path("segments")
    topics: list[str] = field(default_factory=lambda: ["orders", "behavior", "customers"])
    changes_topic: str = "segment-changes"
    dlq_topic: str = "segmenter-dlq"
    repartition_topic: str = "segmenter-repartition"
    partitions: int = 4
    app_id: str = "segmenter"
    data_dir: Path = Path("data")
    store: str = "rocksdb://"
    web_port: int = 6066
    web_host: str = "0.0.0.0"
    web_url: str = ""  # how other workers reach this one; default http://<web host or hostname>:<web port>
    batch_size: int = 2000
    batch_wait: float = 0.005  # seconds a batch waits to fill
    # Longest a fetch waits for data. Apache Kafka answers as soon as data arrives, so
    # this only spaces out empty fetches there; the embedded broker always waits it out.
    # 20 rather than 10: half the fetches, rounds and output batches at low rates (worker
    # CPU 48 -> 43 % of a core at 2,000 events/s, broker 59 -> 54 %) for the same p50.
    fetch_wait_ms: int = 20
    # The worker hands the producer whole record batches (one per partition per round),
    # so lingering batches nothing more; it only delayed every change (5 ms at 0.005).
    producer_linger: float = 0.0
    max_event_bytes: int = 64 * 1024
    security_protocol: str = "PLAINTEXT"  # PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
    sasl_mechanism: str = ""  # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    api_token: str = ""
    replication: int = 1  # replication factor of topics the worker creates
    session_timeout: float = 6.0  # seconds; short timeouts make group joins fast
    rebalance_timeout: float = 3.0
    delivery: str = "batch"  # batch: whole fetches straight to the evaluator; stream: a Faust agent
    # Worker processes started as one worker (see stream/supervisor.py): one process
    # evaluates on one core (Python's GIL), so a machine with cores to spare runs more.
    processes: int = 1


LISTS = {"brokers", "topics"}
HELP = {
    "brokers": "Kafka bootstrap servers, kafka://host:port (repeat or comma-separate)",
    "segments": "definitions file or folder",
    "topics": "input topics (comma-separated or repeated)",
    "partitions": "partitions of the input, repartition and table topics (created if missing)",
    "data_dir": "where the rocksdb table store lives",
    "store": "table store: rocksdb:// or memory://",
    "web_port": "HTTP port for /customers, /segments, /metrics, /health",
    "security_protocol": "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    "web_host": "address the HTTP API listens on",
    "web_url": "URL other workers reach this worker's HTTP API at (default http://<web host, or the "
               "hostname when it is 0.0.0.0>:<web port>)",
    "api_token": "bearer token required by the HTTP API (empty: none)",
    "delivery": "batch (each fetch goes straight to the evaluator) or stream (a Faust agent)",
    "processes": "worker processes to run as one worker, at most one per core; they split the partitions, "
                 "process i keeps its store in <data-dir>/process-<i> and serves HTTP on <web-port>+i",
    "changes_topic": "where enter/exit changes are published (key: customer id)",
    "dlq_topic": "where unusable input events go, with the reason",
    "repartition_topic": "internal: events re-keyed by customer, so one worker holds each customer",
    "app_id": "Kafka consumer group and prefix of the table's changelog topic; workers with the same id "
              "share the work",
    "batch_size": "with --delivery stream: most events a round takes (batch delivery takes whole fetches)",
    "batch_wait": "with --delivery stream: seconds a round waits for more events to fill it",
    "fetch_wait_ms": "longest a fetch waits for data, in milliseconds",
    "producer_linger": "seconds the producer waits to fill a batch of changes",
    "max_event_bytes": "larger input messages are dead-lettered",
    "sasl_mechanism": "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
    "sasl_username": "SASL user name",
    "sasl_password": "SASL password",
    "ssl_cafile": "CA certificates to trust the brokers with (PEM)",
    "ssl_certfile": "client certificate (PEM), for brokers that require one",
    "ssl_keyfile": "the client certificate's private key (PEM)",
    "replication": "replication factor of the topics the worker creates",
    "session_timeout": "seconds without a heartbeat before Kafka takes a worker out of the group",
    "rebalance_timeout": "seconds workers have to rejoin the group during a rebalance",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_fields(parser, Settings, HELP)


def add_fields(parser: argparse.ArgumentParser, settings: type, helps: Mapping[str, str]) -> None:
    """A flag per field of a settings dataclass (the worker's, the sinks'), with its help,
    its default and its SEGMENTER_* variables, as `fill` reads them."""
    for item in fields(settings):
        flag, env = _flag(item.name), " or ".join(_variables(item.name))
        help_text = helps[item.name]
        default = item.default_factory() if item.default_factory is not dataclasses.MISSING else item.default
        shown = ",".join(default) if isinstance(default, list) else default
        if shown != "":
            help_text += f" (default {shown})"
        parser.add_argument(flag, dest=item.name, action="append" if item.name in LISTS else "store",
                            default=None, help=f"{help_text} [env {env}]")


def _convert(name: str, raw: object, default: object) -> object:
    if name in LISTS:
        values = raw if isinstance(raw, list) else [raw]
        return [part.strip() for value in values for part in str(value).split(",") if part.strip()]
    if isinstance(default, bool):
        return str(raw).lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(str(raw))
    if isinstance(default, float):
        return float(str(raw))
    if isinstance(default, Path):
        return Path(str(raw))
    return str(raw)


def _flag(name: str) -> str:
    return "--broker" if name == "brokers" else "--" + name.replace("_", "-")


def _variables(name: str) -> tuple[str, ...]:
    """The SEGMENTER_* variables of a field, the one named after its flag first
    (`--broker` is SEGMENTER_BROKER; SEGMENTER_BROKERS, after the field, works too)."""
    return ("SEGMENTER_BROKER", "SEGMENTER_BROKERS") if name == "brokers" else ("SEGMENTER_" + name.upper(),)


def fill(settings: Any, args: argparse.Namespace | None, environ: Mapping[str, str]) -> None:
    """Set each field of the settings dataclass from its flag, else its SEGMENTER_* variable,
    converted to the type of its default (the worker's and the sinks' settings alike).
    A value of the wrong kind raises ValueError naming the flag and the variable."""
    for item in fields(settings):
        raw = getattr(args, item.name, None) if args is not None else None
        if raw is None:
            raw = next((environ[v] for v in _variables(item.name) if v in environ), None)
        if raw is not None:
            default = getattr(settings, item.name)
            try:
                setattr(settings, item.name, _convert(item.name, raw, default))
            except ValueError:
                kind = "a whole number" if isinstance(default, int) and not isinstance(default, bool) else "a number"
                raise ValueError(f"{_flag(item.name)} ({' or '.join(_variables(item.name))}): {kind}, got {raw!r}") from None


def to_environment(*settings: Any) -> dict[str, str]:
    """Every field of each settings object as its `SEGMENTER_*` variable: what `fill`
    reads back in a child process."""
    environment = {}
    for item in settings:
        for field_ in fields(item):
            value = getattr(item, field_.name)
            text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
            environment[_variables(field_.name)[0]] = text  # the variable `fill` reads first
    return environment


def child_environment(*settings: Any, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child `segmenter` process: this one's, with every field of
    `settings` on top (so a `SEGMENTER_*` variable the user set for something else
    cannot change what the child runs with) and then `extra`."""
    return {**os.environ, **to_environment(*settings), **(extra or {})}


def from_arguments(args: argparse.Namespace | None = None, environ: dict[str, str] | None = None) -> Settings:
    environ = dict(os.environ) if environ is None else environ
    settings = Settings()
    fill(settings, args, environ)
    settings.brokers = [b if "://" in b else f"kafka://{b}" for b in settings.brokers]
    return settings


def advertised_url(settings: Settings) -> str:
    """The URL this worker's HTTP API is reached at by the other workers (they forward
    requests for customers on this worker's partitions to it)."""
    if settings.web_url:
        return settings.web_url.rstrip("/")
    host = settings.web_host
    if host in ("", "0.0.0.0", "::"):
        import socket

        host = socket.gethostname()
    return f"http://{host}:{max(settings.web_port, 1)}"
