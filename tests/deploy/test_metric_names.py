"""The dashboard and the alerts speak only of metrics in the contract (deploy/metrics.txt)."""
from __future__ import annotations

import yaml
from deploy_files import (DEPLOY, PROMETHEUS_OWN, alert_rules, base_name, contract_metrics, dashboard,
                          dashboard_queries, series_names)

# The metric contract the worker and the sinks expose, written out by hand.
EXPECTED = {
    "segmenter_events_total", "segmenter_dead_letters_total", "segmenter_change_latency_seconds",
    "segmenter_changes_total", "segmenter_segment_members", "segmenter_customers", "segmenter_timer_lag_seconds",
    "segmenter_timers_pending", "segmenter_consumer_lag_messages", "segmenter_definition_info",
    "segmenter_worker_partitions", "segmenter_gc_pause_seconds", "segmenter_sink_changes_total", "segmenter_sink_deliveries_total",
    "segmenter_sink_retries_total", "segmenter_sink_dead_letters_total", "segmenter_sink_delivery_seconds",
    "segmenter_sink_consumer_lag_messages",
}


def test_contract_file_lists_the_contract() -> None:
    metrics = contract_metrics()
    assert set(metrics) == EXPECTED
    assert {name for name, kind in metrics.items() if kind == "histogram"} == {
        "segmenter_change_latency_seconds", "segmenter_timer_lag_seconds", "segmenter_sink_delivery_seconds",
        "segmenter_gc_pause_seconds"}
    for name, kind in metrics.items():
        assert name.endswith("_total") == (kind == "counter"), name


def test_series_names_reads_promql() -> None:
    """The reader the next tests rely on, on hand-written expressions."""
    assert series_names('histogram_quantile(0.99, sum by (le) (rate(a_bucket{le="+Inf", x="y"}[5m]))) > 10') == {"a_bucket"}
    assert series_names("sum(rate(b_total[$__rate_interval])) / sum(rate(c_total[5m])) > 0.01") == {"b_total", "c_total"}
    assert series_names("count(count by (version) (d_info)) > 1") == {"d_info"}
    assert series_names("(e unless e offset 10m) or increase(e[10m])") == {"e"}
    assert series_names('up{job="w"} == 0 and on(instance) f') == {"up", "f"}
    assert series_names("sum(segmentr_typo)") == {"segmentr_typo"}


def used_names(exprs: list[str]) -> set[str]:
    metrics = contract_metrics()
    return {base_name(name, metrics) for expr in exprs for name in series_names(expr)}


def test_dashboard_is_provisionable_grafana_json() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and board["panels"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    provisioned = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]


def test_dashboard_uses_only_contract_metrics() -> None:
    unknown = used_names([expr for _, expr in dashboard_queries()]) - EXPECTED - PROMETHEUS_OWN
    assert not unknown


def test_dashboard_shows_every_contract_metric() -> None:
    assert used_names([expr for _, expr in dashboard_queries()]) >= EXPECTED


def test_dashboard_has_the_panels_operators_need() -> None:
    queries = "\n".join(expr for _, expr in dashboard_queries())
    for needed in ("sum by (outcome) (rate(segmenter_events_total",
                   "sum by (segment, change) (rate(segmenter_changes_total",
                   "sum by (segment) (segmenter_segment_members)",
                   "histogram_quantile(0.5, sum by (le) (rate(segmenter_change_latency_seconds_bucket",
                   "histogram_quantile(0.99, sum by (le) (rate(segmenter_change_latency_seconds_bucket",
                   "histogram_quantile(0.99, sum by (le) (rate(segmenter_timer_lag_seconds_bucket",
                   "sum by (topic) (segmenter_consumer_lag_messages)",
                   "segmenter_dead_letters_total",
                   "sum by (destination, outcome) (rate(segmenter_sink_deliveries_total",
                   "segmenter_sink_dead_letters_total",
                   "histogram_quantile(0.99, sum by (le, destination) (rate(segmenter_sink_delivery_seconds_bucket"):
        assert needed in queries, needed


def test_alerts_use_only_contract_metrics() -> None:
    unknown = used_names([rule["expr"] for rule in alert_rules()]) - EXPECTED - PROMETHEUS_OWN
    assert not unknown
