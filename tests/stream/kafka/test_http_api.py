"""The worker's HTTP API and Prometheus metrics, against the embedded broker and real
worker processes.

One worker is fed a generated shop stream (dirt included) plus a few hand-written
customers once per module; the answers are compared with hand-computed values and
with the offline evaluator (`segmenter replay`) over the same messages.
"""
from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest
import urllib.error
import urllib.request

from examples.traffic import TrafficConfig, generate, key_of
from rules import Engine, load_definitions
from sinks.profiles import HttpProfileLookup
from stream.broker import EmbeddedBroker, free_port
from stream.kafka.topics import ensure_topics
from stream.settings import Settings

from expected import rejected, replayed
from harness import REPO, WorkerProcess, produce, read_records, worker_env

SHOP = REPO / "examples" / "segments"
TOKEN = "s3cret-token"
DAY = 86_400_000


@dataclass
class Answer:
    status: int
    body: dict[str, object]
    text: str
    content_type: str


def get(url: str, token: str | None = TOKEN) -> Answer:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, kind = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, raw, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    text = raw.decode()
    body = orjson.loads(raw) if kind.startswith("application/json") else {}
    return Answer(status, body, text, kind)


def wait_for(check, what: str, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    """Poll `check()` until it returns something truthy (readiness, not speed)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"{what}: still {last!r} after {timeout}s")


@dataclass
class Cluster:
    broker: EmbeddedBroker
    folder: Path
    name: str = field(default_factory=lambda: f"h{uuid.uuid4().hex[:8]}")
    workers: list[WorkerProcess] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return Settings(brokers=[self.broker.url], topics=[f"{self.name}-orders", f"{self.name}-behavior"],
                        changes_topic=f"{self.name}-changes", dlq_topic=f"{self.name}-dlq",
                        repartition_topic=f"{self.name}-repartition", app_id=self.name)

    def start_worker(self, **extra: str) -> str:
        s, port = self.settings, free_port()
        env = worker_env(self.broker.bootstrap, SHOP, self.folder / f"data-{len(self.workers)}", self.name,
                         topics=",".join(s.topics), changes_topic=s.changes_topic, dlq_topic=s.dlq_topic,
                         repartition_topic=s.repartition_topic, web_port=str(port), web_host="127.0.0.1", **extra)
        self.workers.append(WorkerProcess(env, self.folder / f"{self.name}-worker-{len(self.workers)}.log"))
        self.urls.append(f"http://127.0.0.1:{port}")
        return self.urls[-1]

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop(timeout=10)
            worker.kill()


def hand_written(now: int) -> list[bytes]:
    """h-1 buys twice and gets a small refund; visitor v-1 browses, then signs up as h-2;
    h/3 has an id that needs escaping in a URL."""
    def event(event_id: str, kind: str, ts: int, **fields: object) -> bytes:
        return orjson.dumps({"event_id": event_id, "type": kind, "timestamp": ts, **fields})

    return [
        event("h1-e1", "customer_created", now - 10 * DAY, customer_id="h-1",
              properties={"email": "h1@example.com", "first_name": "Hana"}),
        event("h1-e2", "order_placed", now - 9 * DAY, customer_id="h-1",
              properties={"total": 600, "items": [{"sku": "MEMBERSHIP-ANNUAL", "category": "membership"}]}),
        event("h1-e3", "order_placed", now - 8 * DAY, customer_id="h-1",
              properties={"total": 500, "backordered": False, "items": [{"sku": "SH-1", "category": "hair"}]}),
        event("h1-e4", "order_refunded", now - 7 * DAY, customer_id="h-1", properties={"amount": 50}),
        *[event(f"v1-e{i}", "product_viewed", now - 3 * DAY + i * 60_000, anonymous_id="v-1",
                properties={"sku": f"SKU-{i}"}) for i in range(5)],
        event("h2-e1", "identify", now - 2 * DAY, anonymous_id="v-1", customer_id="h-2"),
        event("h2-e2", "customer_created", now - 2 * DAY + 1, customer_id="h-2", properties={"email": "h2@example.com"}),
        event("h3-e1", "customer_created", now - DAY, customer_id="h/3 ü?#", properties={"email": "h3@example.com"}),
    ]


@dataclass
class Fed:
    cluster: Cluster
    url: str
    raws: list[bytes]
    as_of: int
    engine: Engine  # replay's engine over the same messages, as of `as_of`


@pytest.fixture(scope="module")
def fed(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    """One worker with an API token, fed generated traffic (dirt included) and the hand-written customers."""
    cluster = Cluster(broker, tmp_path_factory.mktemp("api"))
    asyncio.run(ensure_topics(cluster.settings))
    url = cluster.start_worker(api_token=TOKEN)
    try:
        cluster.workers[0].wait_ready()
        orders, behavior = cluster.settings.topics
        traffic = list(generate(TrafficConfig(customers=300, days=60, bad_event_rate=0.01, duplicate_rate=0.01,
                                              late_rate=0.03)))
        now = int(time.time() * 1000)
        mine = hand_written(now)
        asyncio.run(produce(broker.bootstrap, behavior, [(key_of(raw), raw) for raw in traffic]))
        asyncio.run(produce(broker.bootstrap, orders, [(key_of(raw), raw) for raw in mine]))
        raws = traffic + mine
        predicted, _ = replayed(load_definitions(SHOP), raws, int(time.time() * 1000))
        published = asyncio.run(read_records(broker.bootstrap, cluster.settings.changes_topic,
                                             lambda found: len(found) >= len(predicted), settle=0.5, timeout=120))
        assert len(published) >= len(predicted), "the worker published every change replay predicts"
        as_of = int(time.time() * 1000)
        _, engine = replayed(load_definitions(SHOP), raws, as_of)
        yield Fed(cluster, url, raws, as_of, engine)
    finally:
        cluster.stop()


# -- /customers/{id} -------------------------------------------------------------------------
def test_customer_answer_matches_a_hand_computed_expectation(fed: Fed) -> None:
    answer = get(f"{fed.url}/customers/h-1")
    assert answer.status == 200, answer.text
    body = answer.body
    assert body["customer_id"] == "h-1"
    # 600 + 500 - 50 kept; two orders, both within 90 days; no cart, no backorder, a hair product
    assert body["traits"] == {"lifetime_spend": 1050, "orders": 2, "orders_90d": 2}
    assert body["segments"] == ["big_order", "hair_care_fan", "loyalty", "membership_pricing", "new_customer",
                                "silver"]
    assert body["holdout"] == []
    assert body["profile"]["email"] == "h1@example.com"
    assert body["profile"]["first_name"] == "Hana"
    conditions = body["conditions"]
    assert set(conditions) == set(load_definitions(SHOP).segments)
    assert {name for name, entry in conditions.items() if entry["member"]} == set(body["segments"])
    assert conditions["loyalty"]["when"]["value"] is True
    vip = conditions["vip"]["when"]
    assert vip["value"] is False
    assert [(part["condition"], part["value"]) for part in vip["parts"]] == [
        ("lifetime_spend > 5000", False), ("since(profile.created_at) > 2y", False)]


def test_identified_visitor_history_counts_and_the_anonymous_id_finds_the_customer(fed: Fed) -> None:
    answer = get(f"{fed.url}/customers/h-2")
    assert answer.status == 200, answer.text
    # five product views in the last 7 days came with the visitor's history
    assert answer.body["segments"] == ["engaged_browser", "new_customer", "silver"]
    by_alias = get(f"{fed.url}/customers/v-1")
    assert by_alias.status == 200, by_alias.text
    assert by_alias.body["customer_id"] == "h-2"
    assert by_alias.body["segments"] == answer.body["segments"]


def test_every_customer_matches_replay(fed: Fed) -> None:
    customers = fed.engine.customers()
    assert len(customers) > 100
    for customer in customers:
        answer = get(f"{fed.url}/customers/{quote(customer, safe='')}")
        assert answer.status == 200, (customer, answer.text)
        segments, holdout = fed.engine.memberships(customer)
        expected = fed.engine.explain(customer, fed.as_of)
        assert expected is not None
        assert (answer.body["segments"], answer.body["holdout"]) == (segments, holdout), customer
        assert answer.body["traits"] == expected["traits"], customer
        assert answer.body["profile"] == expected["profile"], customer


def test_ids_that_need_escaping_are_found(fed: Fed) -> None:
    answer = get(f"{fed.url}/customers/{quote('h/3 ü?#', safe='')}")
    assert answer.status == 200, answer.text
    assert answer.body["customer_id"] == "h/3 ü?#"
    assert answer.body["segments"] == ["new_customer", "silver"]


def test_unknown_customer_is_404_and_bad_ids_are_400(fed: Fed) -> None:
    missing = get(f"{fed.url}/customers/nobody-at-all")
    assert missing.status == 404
    assert "nobody-at-all" in missing.body["error"]
    too_long = get(f"{fed.url}/customers/{'x' * 600}")
    assert too_long.status == 400
    assert "longer than" in too_long.body["error"]
    empty = get(f"{fed.url}/customers/")
    assert empty.status == 400
    assert "empty" in empty.body["error"]
    blank = get(f"{fed.url}/customers/%20%20")
    assert blank.status == 400


def test_token_protects_customers_and_segments_but_not_health_and_metrics(fed: Fed) -> None:
    for path in ("/customers/h-1", "/segments"):
        for token in (None, "wrong"):
            answer = get(f"{fed.url}{path}", token=token)
            assert answer.status == 401, (path, token, answer.text)
            assert "token" in answer.body["error"]
    assert get(f"{fed.url}/health", token=None).status == 200
    for raw_pages in ("/table/customers/", "/table/customers/h-1/", "/router/"):
        assert get(f"{fed.url}{raw_pages}", token=None).status == 404, "no raw state beside the API"
    assert get(f"{fed.url}/metrics", token=None).status == 200


def test_sinks_profile_lookup_reads_the_worker_api(fed: Fed) -> None:
    async def look(customer: str) -> dict[str, object]:
        lookup = HttpProfileLookup(fed.url, TOKEN)
        try:
            return await lookup(customer)
        finally:
            await lookup.close()

    found = asyncio.run(look("h-1"))
    assert found["traits"] == {"lifetime_spend": 1050, "orders": 2, "orders_90d": 2}
    assert found["profile"]["email"] == "h1@example.com"  # type: ignore[index]
    assert asyncio.run(look("nobody-at-all")) == {}


# -- /segments, /health --------------------------------------------------------------------
def replay_sizes(engine: Engine) -> tuple[int, Counter[str]]:
    customers = engine.customers()
    return len(customers), Counter(s for c in customers for s in engine.memberships(c)[0])


def test_segment_sizes_equal_replay(fed: Fed) -> None:
    answer = get(f"{fed.url}/segments")
    assert answer.status == 200, answer.text
    customers, sizes = replay_sizes(fed.engine)
    assert answer.body["customers"] == customers
    assert answer.body["workers"] == 1
    segments = answer.body["segments"]
    assert set(segments) == set(load_definitions(SHOP).segments)
    assert {name: entry["size"] for name, entry in segments.items()} == {n: sizes.get(n, 0) for n in segments}
    for name, entry in segments.items():
        assert entry["share"] == pytest.approx(sizes.get(name, 0) / customers, abs=1e-6)


def test_health_reports_ready_with_the_partitions(fed: Fed) -> None:
    answer = get(f"{fed.url}/health", token=None)
    assert answer.status == 200
    assert answer.body["status"] == "ready"
    assert answer.body["partitions"] == [0, 1, 2, 3]


# -- /metrics ------------------------------------------------------------------------------
def samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def test_metrics_count_what_happened(fed: Fed) -> None:
    answer = get(f"{fed.url}/metrics", token=None)
    assert answer.status == 200
    assert answer.content_type.startswith("text/plain")
    values = samples(answer.text)
    customers, sizes = replay_sizes(fed.engine)
    assert values["segmenter_customers"] == customers
    for name in load_definitions(SHOP).segments:
        assert values[f'segmenter_segment_members{{segment="{name}"}}'] == sizes.get(name, 0), name
    bad = rejected(fed.raws)
    assert len(bad) >= 5
    dead = {k: v for k, v in values.items() if k.startswith("segmenter_dead_letters_total")}
    assert sum(dead.values()) == len(bad)
    assert set(dead) == {f'segmenter_dead_letters_total{{reason="{code}"}}' for code in
                         ("invalid_json", "not_an_object", "missing_field", "bad_field", "unknown_type",
                          "bad_timestamp", "other")}
    behavior = fed.cluster.settings.topics[1]
    assert values[f'segmenter_events_total{{outcome="dead_letter",topic="{behavior}"}}'] == len(bad)
    assert sum(n - 1 for n in Counter(fed.raws).values()) >= 1, "the stream repeats some messages"
    assert values.get(f'segmenter_events_total{{outcome="duplicate",topic="{behavior}"}}', 0) >= 1
    changes = {k: v for k, v in values.items() if k.startswith("segmenter_changes_total")}
    published = Counter((c["segment"], c["change"]) for c in replayed(load_definitions(SHOP), fed.raws, fed.as_of)[0])
    assert changes == {f'segmenter_changes_total{{change="{change}",segment="{segment}"}}': float(n)
                       for (segment, change), n in published.items()}
    assert values["segmenter_change_latency_seconds_count"] >= 1
    assert values["segmenter_timer_lag_seconds_count"] >= 1
    assert values['segmenter_gc_pause_seconds_count{generation="0"}'] >= 1, "collector pauses are reported"
    assert values["segmenter_worker_partitions"] == 4
    version = load_definitions(SHOP).version
    assert values[f'segmenter_definition_info{{version="{version}"}}'] == 1
    assert values[f'segmenter_consumer_lag_messages{{topic="{behavior}"}}'] == 0
    assert "segmenter_timers_pending" in values


def test_promtool_accepts_the_live_metrics(fed: Fed) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package 'prometheus'; .ci/run installs it)")
    text = get(f"{fed.url}/metrics", token=None).text
    assert "segmenter_change_latency_seconds_bucket" in text
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_live_metrics_are_the_ones_dashboards_and_alerts_use(fed: Fed) -> None:
    """deploy/metrics.txt is what the Grafana dashboard and the alert rules may query
    (tests/deploy checks that side); a running worker must expose exactly its worker part."""
    listed = {}
    for line in (Path(__file__).parents[3] / "deploy" / "metrics.txt").read_text().splitlines():
        fields = line.split()
        if fields and not line.startswith("#") and fields[-1] == "worker":
            listed[fields[0]] = fields[1]
    text = get(f"{fed.url}/metrics", token=None).text
    exposed = {line.split()[2].removesuffix("_total"): line.split()[3] for line in text.splitlines()
               if line.startswith("# TYPE segmenter_")}  # a counter's TYPE line may leave out _total
    assert exposed == {name.removesuffix("_total"): kind for name, kind in listed.items()}


# -- two workers ---------------------------------------------------------------------------
def timeless(body: dict[str, object]) -> dict[str, object]:
    """An answer without what depends on the instant it was given (the countdown, and
    the durations `since(...)` that the condition parts show)."""
    def part(shown: dict) -> dict:
        values = {text: value for text, value in shown.get("values", {}).items() if not text.startswith("since(")}
        return {**shown, "values": values}

    def condition(entry: dict) -> dict:
        return {k: ({**v, "parts": [part(p) for p in v["parts"]]} if k in ("when", "exit_when") else v)
                for k, v in entry.items() if k != "next_check_in"}

    conditions = {name: condition(entry) for name, entry in body["conditions"].items()}  # type: ignore[union-attr]
    return {**{k: v for k, v in body.items() if k != "as_of"}, "conditions": conditions}


def test_two_workers_answer_for_each_others_customers(broker: EmbeddedBroker, tmp_path: Path) -> None:
    cluster = Cluster(broker, tmp_path)
    asyncio.run(ensure_topics(cluster.settings))
    try:
        first, second = cluster.start_worker(), cluster.start_worker()

        def split() -> list[list[int]] | None:
            try:
                answers = [get(f"{url}/health") for url in (first, second)]
            except urllib.error.URLError:
                return None  # not listening yet
            held = [list(a.body.get("partitions", [])) for a in answers]
            ok = all(a.status == 200 for a in answers) and sorted(held[0] + held[1]) == [0, 1, 2, 3]
            return held if ok and held[0] and held[1] else None

        held = wait_for(split, "both workers ready with the partitions split between them")
        orders = cluster.settings.topics[0]
        traffic = list(generate(TrafficConfig(customers=60, days=30)))
        asyncio.run(produce(broker.bootstrap, orders, [(key_of(raw), raw) for raw in traffic]))
        _, engine = replayed(load_definitions(SHOP), traffic, int(time.time() * 1000))
        customers, sizes = replay_sizes(engine)

        expected = {name: sizes.get(name, 0) for name in load_definitions(SHOP).segments}

        def counted() -> dict[str, object] | None:
            """The answer once the workers have caught up with the stream (sizes as replay's)."""
            answer = get(f"{first}/segments")
            if answer.status != 200:
                return None
            found = {name: entry["size"] for name, entry in answer.body["segments"].items()}
            return answer.body if answer.body["customers"] == customers and found == expected else None

        totals = wait_for(counted, f"/segments over both workers equal to replay's {expected}")
        assert totals["workers"] == 2
        assert get(f"{second}/segments").body == totals

        served = Counter()
        for customer in engine.customers():
            answers = [get(f"{url}/customers/{quote(customer, safe='')}") for url in (first, second)]
            assert [a.status for a in answers] == [200, 200], (customer, answers[0].text, answers[1].text)
            assert timeless(answers[0].body) == timeless(answers[1].body), customer
            assert answers[0].body["segments"] == engine.memberships(customer)[0], customer
            owner = answers[0].body["served_by"]
            partition = answers[0].body["partition"]
            assert partition in held[[first, second].index(owner)], (customer, owner, partition)
            served[owner] += 1
        assert set(served) == {first, second}, "customers of both workers were asked through both"
    finally:
        cluster.stop()
