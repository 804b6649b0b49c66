"""Prometheus files: valid for promtool, alerts proven by their unit tests, runbook linked."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import yaml
from deploy_files import PROMETHEUS, ROOT, alert_rules, dashboard_queries, run


def test_config_is_valid(tool: Callable[[str, str], str]) -> None:
    result = run([tool("promtool", "prometheus"), "check", "config", str(PROMETHEUS / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout  # alerts.yml is loaded, not only present


def test_rules_are_valid(tool: Callable[[str, str], str]) -> None:
    result = run([tool("promtool", "prometheus"), "check", "rules", str(PROMETHEUS / "alerts.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass(tool: Callable[[str, str], str]) -> None:
    result = run([tool("promtool", "prometheus"), "test", "rules", str(PROMETHEUS / "alerts.test.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    """Each alert has a case where it must fire and one where it must not."""
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for rule in alert_rules():
        name = rule["alert"]
        fired = [case for case in cases if case["alertname"] == name and case["exp_alerts"]]
        quiet = [case for case in cases if case["alertname"] == name and not case["exp_alerts"]]
        assert fired and quiet, f"{name}: fired in {len(fired)}, quiet in {len(quiet)} cases"


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_has_a_runbook_entry() -> None:
    readme = (ROOT / "README.md").read_text()
    anchors = {github_anchor(line.lstrip("#")) for line in readme.splitlines() if line.startswith("#")}
    for rule in alert_rules():
        runbook = rule["annotations"]["runbook"]
        assert runbook == "README.md#" + rule["alert"].lower()
        assert rule["alert"].lower() in anchors, f"README has no heading for {rule['alert']}"
        assert rule["labels"]["severity"] in ("warning", "critical")


def test_dashboard_queries_are_valid_promql(tool: Callable[[str, str], str], tmp_path: Path) -> None:
    """Each query as a recording rule: promtool parses it ($__rate_interval is Grafana's, here 5m)."""
    rules = [{"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m")}
             for i, (_, expr) in enumerate(dashboard_queries())]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run([tool("promtool", "prometheus"), "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
