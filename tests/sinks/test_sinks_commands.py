"""`segmenter sinks` and `segmenter redrive` as commands: settings, start errors, a real
process that starts, works and stops on SIGTERM."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest
import redis as sync_redis
from aiokafka import AIOKafkaProducer

from sinks import cli, redrive_cli
from sinks.app import prepare
from sinks.registry import close_all, start_all
from sinks.settings import from_arguments
from stream.broker import EmbeddedBroker, free_port

REPO = Path(__file__).resolve().parents[2]
SEGMENTS = """
segments:
  loyalty:
    when: "true"
    on_enter: [{group: {add: loyalty}}]
    on_exit: [{group: {remove: loyalty}}]
  vip:
    when: "true"
    on_enter: [{webhook: {destination: crm}}]
destinations:
  group: {type: redis}
  crm: {type: webhook, url: "${CRM_URL}", secret: "${CRM_SECRET}"}
"""
RUN = ("import argparse, sys; from sinks import {module} as command; parser = argparse.ArgumentParser(); "
       "command.register(parser); sys.exit(command.run(parser.parse_args(sys.argv[1:])))")


def parse(module, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.register(parser)
    return parser.parse_args(list(argv))


def write_segments(tmp_path: Path) -> Path:
    folder = tmp_path / "segments"
    folder.mkdir(exist_ok=True)
    (folder / "segments.yaml").write_text(SEGMENTS)
    return folder


def test_flags_win_over_environment() -> None:
    args = parse(cli, "--redis-url", "redis://flag:6379/1", "--max-retries", "7")
    settings, sink = from_arguments(args, {"SEGMENTER_REDIS_URL": "redis://env/0", "SEGMENTER_RETRY_BASE": "0.5",
                                           "SEGMENTER_CHANGES_TOPIC": "my-changes"})
    assert (sink.redis_url, sink.max_retries, sink.retry_base) == ("redis://flag:6379/1", 7, 0.5)
    assert settings.changes_topic == "my-changes" and sink.sink_dlq_topic == "segmenter-sink-dlq"
    assert sink.sinks_group == "segmenter-sinks"
    assert parse(redrive_cli, "--from-beginning", "--list").from_beginning


def test_missing_variable_stops_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CRM_URL", raising=False)
    monkeypatch.setenv("CRM_SECRET", "x")
    assert cli.run(parse(cli, "--segments", str(write_segments(tmp_path)))) == 1
    assert "destination 'crm': environment variable CRM_URL is not set" in capsys.readouterr().err


def test_a_variable_set_but_empty_stops_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`CRM_SECRET=` in an env file would sign every webhook with an empty secret."""
    monkeypatch.setenv("CRM_URL", "http://127.0.0.1:1/hook")
    monkeypatch.setenv("CRM_SECRET", " ")
    assert cli.run(parse(cli, "--segments", str(write_segments(tmp_path)))) == 1
    assert "destination 'crm': environment variable CRM_SECRET is set but empty" in capsys.readouterr().err


def test_sinks_process_works_and_stops_on_sigterm(broker: EmbeddedBroker, tmp_path: Path, redis_url: str,
                                                  prefix: str) -> None:
    run = uuid.uuid4().hex[:8]
    env = {**os.environ, "CRM_URL": "http://127.0.0.1:1/hook", "CRM_SECRET": "x",
           "SEGMENTER_BROKERS": broker.url, "SEGMENTER_SEGMENTS": str(write_segments(tmp_path)),
           "SEGMENTER_CHANGES_TOPIC": f"changes-{run}", "SEGMENTER_SINKS_GROUP": f"sinks-{run}",
           "SEGMENTER_SINK_DLQ_TOPIC": f"dlq-{run}", "SEGMENTER_REDIS_URL": redis_url,
           "SEGMENTER_REDIS_PREFIX": prefix, "SEGMENTER_SESSION_TIMEOUT": "2"}
    process = subprocess.Popen([sys.executable, "-c", RUN.format(module="cli")], cwd=REPO, env=env,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:
            lines.append(line)
            if "segmenter sinks ready" in line:
                break
        assert "segmenter sinks ready" in lines[-1], "".join(lines)
        change = {"customer_id": "c-1", "segment": "loyalty", "change": "enter", "seq": 1,
                  "at": "2026-01-01T00:00:00Z", "cause": "e-1", "holdout": False, "definition": "x"}
        async def send() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
            await producer.start()
            await producer.send_and_wait(f"changes-{run}", orjson.dumps(change), key=b"c-1")
            await producer.stop()

        asyncio.run(send())
        client = sync_redis.Redis.from_url(redis_url, decode_responses=True)
        deadline = time.monotonic() + 30
        while not client.sismember(f"{prefix}segment:loyalty", "c-1") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.smembers(f"{prefix}customer:c-1") == {"loyalty"}
        client.close()
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(15) == 0
        rest = process.stderr.read()
        assert "sinks stopping" in rest and "deliveries[group,applied]=1" in rest
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_redrive_lists_an_empty_dead_letter_topic(broker: EmbeddedBroker, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Listing runs no action: it needs neither the destinations' variables nor their servers."""
    monkeypatch.delenv("CRM_URL", raising=False)
    monkeypatch.delenv("CRM_SECRET", raising=False)
    run = uuid.uuid4().hex[:8]
    args = parse(redrive_cli, "--list", "--idle", "0.5", "--broker", broker.url, "--segments",
                 str(write_segments(tmp_path)), "--sink-dlq-topic", f"dlq-{run}", "--redrive-group", f"redrive-{run}",
                 "--session-timeout", "2")
    assert redrive_cli.run(args) == 0
    assert "0 dead letter(s)" in capsys.readouterr().err


def test_a_bad_redis_url_stops_the_start_and_names_the_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CRM_URL", "http://127.0.0.1:1/hook")
    monkeypatch.setenv("CRM_SECRET", "x")
    args = parse(cli, "--segments", str(write_segments(tmp_path)), "--redis-url", "127.0.0.1:6379")
    assert cli.run(args) == 1
    err = capsys.readouterr().err
    assert "'127.0.0.1:6379'" in err and "--redis-url" in err and "redis://" in err


async def test_servers_that_do_not_answer_are_named_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    closed_redis, closed_smtp = free_port(), free_port()  # nothing listens on either
    folder = tmp_path / "segments"
    folder.mkdir()
    (folder / "shop.yaml").write_text(f"""
segments:
  welcome:
    when: "true"
    on_enter: [{{email: {{template: welcome}}}}, {{group: {{add: new}}}}]
destinations:
  email: {{type: smtp, host: 127.0.0.1, port: {closed_smtp}, sender: shop@example.com}}
  group: {{type: redis}}
""")
    settings, sink = from_arguments(parse(cli, "--segments", str(folder), "--redis-url",
                                          f"redis://127.0.0.1:{closed_redis}/0", "--templates",
                                          str(tmp_path / "templates")), {})
    with caplog.at_level(logging.WARNING, logger="segmenter.sinks"):
        prepared = prepare(settings, sink)
        await start_all(prepared.sinks, prepared.context)
        await close_all(prepared.sinks, prepared.context)
    warnings = "\n".join(record.getMessage() for record in caplog.records)
    assert f"Redis redis://127.0.0.1:{closed_redis}/0 does not answer" in warnings and "--redis-url" in warnings
    assert f"SMTP server 127.0.0.1:{closed_smtp} does not answer" in warnings
    assert "needs --profile-url" in warnings
    assert "no email template" in warnings and "welcome.txt" in warnings


def test_a_setting_unreadable_after_its_variable_is_filled_in_names_the_destination(context) -> None:
    from rules.language.model import Destination, Origin
    from sinks.registry import build_sinks

    mail = Destination("email", "smtp", {"host": "x", "port": "twenty-five", "password": "hunter2"}, Origin("t", 1))
    with pytest.raises(ValueError) as caught:
        build_sinks({"email": mail}, context)
    assert str(caught.value).startswith("destination 'email': a setting cannot be read (invalid literal for int()")
    assert "port='twenty-five'" in str(caught.value) and "hunter2" not in str(caught.value)


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--attempt-budget", "0", "--attempt-budget must be above 0 seconds (0 would start no message), not 0.0"),
    ("--max-retries", "-1", "--max-retries must be 0 or more, not -1"),
    ("--sink-batch", "0", "--sink-batch must be 1 or more, not 0"),
])
def test_settings_that_would_dead_letter_everything_are_refused(flag: str, value: str, message: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """An attempt budget of 0 would start no message and dead-letter every action."""
    assert cli.run(parse(cli, flag, value)) == 1
    assert message in capsys.readouterr().err
