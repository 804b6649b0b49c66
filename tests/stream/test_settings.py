"""Worker settings: flags win over `SEGMENTER_*` variables, and a worker's processes get
exactly their parent's settings through the environment (stream/supervisor.py)."""
from __future__ import annotations

import argparse
from pathlib import Path

from stream import settings as worker_settings
from stream.supervisor import process_settings


def parse(argv: list[str], environ: dict[str, str]) -> worker_settings.Settings:
    parser = argparse.ArgumentParser()
    worker_settings.add_arguments(parser)
    return worker_settings.from_arguments(parser.parse_args(argv), environ)


def test_flags_win_over_the_environment_and_the_environment_over_defaults() -> None:
    settings = parse(["--broker", "k1:9092", "--broker", "kafka://k2:9093", "--partitions", "8"],
                     {"SEGMENTER_PARTITIONS": "2", "SEGMENTER_TOPICS": "a, b", "SEGMENTER_BATCH_WAIT": "0.01"})
    assert settings.brokers == ["kafka://k1:9092", "kafka://k2:9093"]
    assert (settings.partitions, settings.topics, settings.batch_wait) == (8, ["a", "b"], 0.01)
    assert settings.processes == worker_settings.Settings().processes == 1


def test_a_process_reads_back_every_setting_of_its_worker() -> None:
    parent = parse(["--broker", "k1:9092,k2:9092", "--topics", "x,y", "--processes", "3", "--web-port", "7000",
                    "--data-dir", "/var/lib/seg", "--sasl-password", "p,w=1", "--batch-wait", "0.002"], {})
    child = process_settings(parent, 2)
    assert worker_settings.from_arguments(None, worker_settings.to_environment(child)) == child
    assert (child.processes, child.web_port, child.data_dir) == (1, 7002, Path("/var/lib/seg/process-2"))
    assert {k: v for k, v in vars(child).items() if k not in ("processes", "web_port", "data_dir")} == \
        {k: v for k, v in vars(parent).items() if k not in ("processes", "web_port", "data_dir")}


def test_processes_of_a_worker_without_http_serve_none() -> None:
    parent = parse(["--processes", "2", "--web-port", "0"], {})
    assert [process_settings(parent, i).web_port for i in range(2)] == [0, 0]


def test_the_broker_variable_is_named_after_its_flag() -> None:
    """README: every flag has its SEGMENTER_* variable; `--broker` is SEGMENTER_BROKER
    (SEGMENTER_BROKERS, as in docker-compose, works too; the flag's name wins)."""
    assert parse([], {"SEGMENTER_BROKER": "k1:1"}).brokers == ["kafka://k1:1"]
    assert parse([], {"SEGMENTER_BROKERS": "k2:2"}).brokers == ["kafka://k2:2"]
    assert parse([], {"SEGMENTER_BROKER": "k1:1", "SEGMENTER_BROKERS": "k2:2"}).brokers == ["kafka://k1:1"]
    # a child process gets its parent's brokers, whatever the variables it inherits say
    parent = parse(["--broker", "k3:3"], {"SEGMENTER_BROKER": "k1:1"})
    inherited = {"SEGMENTER_BROKER": "k1:1", **worker_settings.to_environment(parent)}
    assert worker_settings.from_arguments(None, inherited).brokers == ["kafka://k3:3"]


def test_a_value_of_the_wrong_kind_names_its_flag_and_variable() -> None:
    for argv, environ, message in (
            (["--partitions", "abc"], {}, "--partitions (SEGMENTER_PARTITIONS): a whole number, got 'abc'"),
            ([], {"SEGMENTER_BATCH_WAIT": "soon"}, "--batch-wait (SEGMENTER_BATCH_WAIT): a number, got 'soon'")):
        try:
            parse(argv, environ)
        except ValueError as exc:
            assert str(exc) == message
        else:
            raise AssertionError(f"{argv} {environ} accepted")
