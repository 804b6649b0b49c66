"""What sinks share beyond their own destination settings, set once from the command line."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sinks.profiles import ProfileLookup
from sinks.redis_lua import RedisClients


@dataclass
class SinkContext:
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "segmenter:"  # every key the sinks write starts with it
    templates: Path = Path("templates")  # email templates: <templates>/<destination>/<template>.txt|.html
    profile_lookup: ProfileLookup | None = None  # profile and traits for templates, when available
    redis: RedisClients = field(default_factory=RedisClients)

    def redis_for(self, settings: dict[str, object]) -> tuple[str, str]:
        """(url, key prefix) of a destination: its own `url`/`prefix`, else the defaults."""
        return str(settings.get("url") or self.redis_url), str(settings.get("prefix") or self.redis_prefix)
