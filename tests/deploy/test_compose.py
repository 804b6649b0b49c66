"""docker-compose.yml: valid for docker-compose, and consistent with the rest of the project.

No Docker engine is needed: `docker-compose config` validates and resolves the file.
What only a running engine shows (images start, the worker joins, metrics are scraped)
is not covered here.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_files import PROMETHEUS, ROOT, mounts, published_ports, run

from sinks.settings import SinkSettings
from stream.settings import Settings

WORKERS = ("worker-1", "worker-2")


@pytest.fixture(scope="module")
def compose(tool: Callable[[str, str], str]) -> dict[str, Any]:
    """The resolved configuration, demo profile included."""
    result = run([tool("docker-compose", "docker-compose"), "--profile", "demo", "config"])
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.mark.parametrize("profile", [[], ["--profile", "demo"]], ids=["default", "demo"])
def test_compose_file_is_valid(tool: Callable[[str, str], str], profile: list[str]) -> None:
    result = run([tool("docker-compose", "docker-compose"), *profile, "config", "--quiet"])
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr  # e.g. an unset variable without a default


def test_production_shape(compose: dict[str, Any]) -> None:
    services = compose["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft: no ZooKeeper
    assert not any("zookeeper" in name for name in services)
    for name in WORKERS:
        assert services[name]["command"] == ["worker"]
    assert services["sinks"]["command"] == ["sinks"]
    for name in ("redis", "mailpit", "prometheus", "grafana"):
        assert name in services
    assert services["producer"]["profiles"] == ["demo"]


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            continue
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"{name}: {image} has no tag"
        assert not image.endswith((":latest", ":edge")), f"{name}: {image} is not pinned"


def test_each_worker_has_its_own_state_volume_and_port(compose: dict[str, Any]) -> None:
    volumes, host_ports = set(), set()
    for name in WORKERS:
        service = compose["services"][name]
        environment = service["environment"]
        data_dir = environment["SEGMENTER_DATA_DIR"]
        source = mounts(service)[data_dir]
        assert source in compose["volumes"], f"{name}: {data_dir} is not on a named volume"
        volumes.add(source)
        ports = published_ports(service)
        assert list(ports.values()) == [int(environment["SEGMENTER_WEB_PORT"])]
        host_ports.update(ports)
    assert len(volumes) == len(WORKERS)
    assert len(host_ports) == len(WORKERS)


def test_segmenter_variables_are_real_settings(compose: dict[str, Any]) -> None:
    """A misspelt SEGMENTER_* variable would be ignored silently."""
    known = {"SEGMENTER_" + name.upper() for name in (*Settings.__dataclass_fields__, *SinkSettings.__dataclass_fields__)}
    for name, service in compose["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith("SEGMENTER_") and name != "producer":
                assert variable in known, f"{name}: {variable} is not a segmenter setting"


def test_destination_variables_of_the_example_are_set(compose: dict[str, Any]) -> None:
    """The sinks refuse to start when a variable a destination needs is unset."""
    definitions = yaml.safe_load((ROOT / "examples" / "segments" / "shop.yaml").read_text())
    needed = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", str(definitions["destinations"])))
    assert {"SMTP_HOST", "CRM_URL", "CRM_SECRET"} <= needed
    services = compose["services"]
    environment = services["sinks"]["environment"]
    assert needed <= set(environment)
    assert environment["SMTP_HOST"] == "mailpit"
    crm_host = re.match(r"http://([\w-]+):(\d+)/", environment["CRM_URL"])
    assert crm_host is not None and crm_host.group(1) in services
    assert services["crm"]["environment"]["CRM_PORT"] == crm_host.group(2)
    assert services["crm"]["environment"]["CRM_SECRET"] == environment["CRM_SECRET"]
    assert services["sinks"]["environment"]["SEGMENTER_REDIS_URL"].startswith("redis://redis:")


def test_topics_share_one_partition_count(compose: dict[str, Any]) -> None:
    """Inputs, repartition topic and table changelog must be co-partitioned."""
    services = compose["services"]
    counts = {services["kafka-init"]["environment"]["PARTITIONS"],
              services["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"]}
    counts |= {services[name]["environment"]["SEGMENTER_PARTITIONS"] for name in (*WORKERS, "sinks")}
    assert len({str(count) for count in counts}) == 1, counts
    script = services["kafka-init"]["command"][0]
    for topic in (*Settings().topics, Settings().changes_topic, Settings().dlq_topic, Settings().repartition_topic,
                  SinkSettings().sink_dlq_topic):
        assert topic in script


def test_prometheus_scrapes_the_compose_services(compose: dict[str, Any]) -> None:
    scrape = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"]
    targets = {job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]] for job in scrape}
    services = compose["services"]
    assert sorted(targets["segmenter-worker"]) == [f"{name}:{services[name]['environment']['SEGMENTER_WEB_PORT']}"
                                                    for name in WORKERS]
    assert targets["segmenter-sinks"] == [f"sinks:{services['sinks']['environment']['SEGMENTER_METRICS_PORT']}"]
    assert mounts(services["prometheus"])["/etc/prometheus"] == str(PROMETHEUS)


def test_mounted_files_are_in_the_repository(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for target, source in mounts(service).items():
            if source.startswith("/"):
                assert Path(source).exists(), f"{name}: {source} -> {target} does not exist"
                assert Path(source).is_relative_to(ROOT), f"{name}: {source} is outside the repository"
