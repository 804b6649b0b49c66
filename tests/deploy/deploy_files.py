"""The deployment files as data: the metric contract, dashboard queries, alert rules.

Also the PromQL reading the tests need: which metric names an expression selects.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "segmenter.json"

# Series Prometheus makes itself, usable in alerts besides the contract's metrics.
PROMETHEUS_OWN = {"up"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                "bool", "offset", "inf", "nan"}


def run(command: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a tool; the test shows its output when it fails."""
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def contract_metrics() -> dict[str, str]:
    """deploy/metrics.txt as {name: type}."""
    metrics = {}
    for line in (DEPLOY / "metrics.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, kind = line.split()[:2]
            metrics[name] = kind
    return metrics


def series_names(expr: str) -> set[str]:
    """The metric names an expression selects (labels, functions, keywords and numbers removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)            # strings, e.g. le="+Inf"
    text = re.sub(r"\{[^}]*\}", " ", text)                      # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)                     # range selectors, [5m], [$__rate_interval]
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+\w+", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        following = text[match.end():].lstrip()
        if following.startswith("(") or word.lower() in PROMQL_WORDS:
            continue                                            # a function or a keyword
        if text[max(0, match.start() - 1)].isdigit():
            continue                                            # part of a number or duration
        names.add(word)
    return names


def base_name(series: str, metrics: dict[str, str]) -> str:
    """`x_bucket` of a histogram `x` is `x`; any other name is itself."""
    for suffix in HISTOGRAM_SUFFIXES:
        stem = series.removesuffix(suffix)
        if stem != series and metrics.get(stem) == "histogram":
            return stem
    return series


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expr) for every query of the dashboard."""
    return [(panel["title"], target["expr"]) for panel in dashboard()["panels"] for target in panel.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def compose_file() -> dict[str, Any]:
    """docker-compose.yml as written (anchors resolved by the YAML loader)."""
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def published_ports(service: dict[str, Any]) -> dict[int, int]:
    """{host port: container port} from `docker-compose config` output (long or short syntax)."""
    ports = {}
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports[int(entry["published"])] = int(entry["target"])
        else:
            host, _, container = str(entry).rpartition(":")
            ports[int(host)] = int(container)
    return ports


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """{container path: source} from `docker-compose config` output (long or short syntax)."""
    found = {}
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            found[entry["target"]] = entry.get("source", "")
        else:
            source, target = str(entry).split(":")[:2]
            found[target] = source
    return found
