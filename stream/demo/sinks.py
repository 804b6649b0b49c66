"""The demo's `segmenter sinks`, with everything its destinations need on this machine.

Emails go to a local SMTP catcher, the CRM webhooks to a local receiver, the CSV export
and both of those into `<workdir>/outbox/`; groups and price lists into Redis (see
`redis_server`). Email templates are the example's (examples/templates), and profiles
for them come from the demo worker's `GET /customers/{id}`. What the sinks did is read
from their Prometheus counters, by destination type, for the live view.
"""
from __future__ import annotations

import re
import secrets
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from rules.language.model import Definitions
from sinks.settings import SinkSettings
from stream.broker import free_port
from stream.demo.process import SegmenterProcess
from stream.demo.receivers import MailCatcher, WebhookReceiver
from stream.demo.redis_server import DEMO_PREFIX, DemoRedis
from stream.settings import Settings, child_environment

SINK_DLQ_TOPIC = SinkSettings.sink_dlq_topic  # the sinks' default, which the demo keeps
EMAIL_PORT = re.compile(r"^(\s*email:\s*\{.*\bport:\s*)1025\b", re.MULTILINE)
# What the live view shows, by destination type (Redis ones by destination name: group, pricing).
LABELS = {"smtp": "emails", "webhook": "webhooks", "csv": "CSV rows"}


class DemoSinks:
    def __init__(self, workdir: Path, examples: Path) -> None:
        self.outbox = workdir / "outbox"
        self.templates = examples / "templates"
        self.redis = DemoRedis(workdir / "redis")
        self.mail = MailCatcher(self.outbox / "mail")
        self.hooks = WebhookReceiver(self.outbox, secrets.token_hex(16))
        self.metrics_port = free_port()
        self.log = workdir / "sinks.log"
        self.process: SegmenterProcess | None = None

    def shop_yaml(self, text: str) -> str:
        """The example's definitions with the email destination pointed at the catcher."""
        changed, count = EMAIL_PORT.subn(rf"\g<1>{self.mail.port}", text)
        if count != 1:
            raise RuntimeError("examples/segments/shop.yaml: no `email: {... port: 1025 ...}` destination")
        return changed

    def start(self, settings: Settings) -> str:
        """Start everything; a line saying where to look (or why there are no sinks)."""
        if not self.redis.start():
            return ("sinks off: no Redis answers at 127.0.0.1:6379 and there is no redis-server to start "
                    "(install Redis to see groups, price lists, emails and exports)")
        self.mail.start()
        self.hooks.start()
        env = child_environment(settings, self.settings(settings), extra={
            "SMTP_HOST": "127.0.0.1", "CRM_URL": self.hooks.url, "CRM_SECRET": self.hooks.secret.decode()})
        self.process = SegmenterProcess("sinks", env, self.log, "segmenter sinks ready", cwd=self.outbox)
        return f"emails, webhooks, CSV: {self.outbox}; groups, price lists: {self.redis.where}"

    def settings(self, worker: Settings) -> SinkSettings:
        """The sinks' own settings in the demo (the rest are the sinks' defaults)."""
        return SinkSettings(redis_url=self.redis.url, redis_prefix=DEMO_PREFIX, templates=self.templates,
                            metrics_port=self.metrics_port, profile_url=f"http://127.0.0.1:{worker.web_port}")

    def exited(self) -> bool:
        return self.process is not None and self.process.exited()

    async def counts(self, session: aiohttp.ClientSession, definitions: Definitions) -> dict[str, int]:
        """Actions carried out by destination type, and dead letters, from the sinks' counters."""
        async with session.get(f"http://127.0.0.1:{self.metrics_port}/metrics") as response:
            text = await response.text()
        redis = [f"{name} updates" for name, dest in sorted(definitions.destinations.items()) if dest.type == "redis"]
        counts = dict.fromkeys([LABELS["smtp"], *redis, LABELS["webhook"], LABELS["csv"], "held out"], 0)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "segmenter_sink_deliveries_total" and sample.labels.get("outcome") == "applied":
                    name = sample.labels.get("destination", "")
                    destination = definitions.destinations.get(name)
                    if destination is not None:
                        label = f"{name} updates" if destination.type == "redis" else LABELS.get(destination.type)
                        if label is not None:
                            counts[label] += int(sample.value)
                elif sample.name == "segmenter_sink_dead_letters_total":
                    counts["dead letters"] = counts.get("dead letters", 0) + int(sample.value)
                elif sample.name == "segmenter_sink_changes_total" and sample.labels.get("outcome") == "holdout":
                    counts["held out"] += int(sample.value)
        return counts

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        self.mail.stop()
        self.hooks.stop()
        self.redis.stop()
