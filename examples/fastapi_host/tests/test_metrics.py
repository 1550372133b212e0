"""``GET /metrics`` (one process): the Prometheus text format, read with prometheus_client's own
parser; the HTTP and engine counters move by exactly the requests and operations made, the outbox
gauges follow the store, the route is public but not in the OpenAPI document, and every metric
the Grafana dashboard queries is in a real scrape. (Two workers: tests/test_postgres_workers.py.)"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMIN, RecordingNotifier, assert_envelope, http_call, make_settings, register, wait_until
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

import fundcore
from fundcore_host.app import create_app
from fundcore_host.metrics import ENGINE_MIRROR_INTERVAL_S

DASHBOARD = Path(__file__).resolve().parents[1] / "grafana" / "fundcore-host.json"

#: A sample: its name and its labels, sorted.
SampleKey = tuple[str, tuple[tuple[str, str], ...]]


def parse(text: str) -> dict[SampleKey, float]:
    """Every sample of a scrape, by name and labels (prometheus_client's parser)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(get: Any) -> dict[SampleKey, float]:
    response = get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version="), response.headers
    return parse(response.text)


def moved(
    before: dict[SampleKey, float], after: dict[SampleKey, float], name: str, **fixed: str
) -> dict[tuple[tuple[str, str], ...], float]:
    """How each series of ``name`` (whose labels include ``fixed``) moved between two scrapes;
    series that did not move are left out."""
    changes = {}
    for (sample, labels), value in after.items():
        if sample != name or not set(fixed.items()) <= set(labels):
            continue
        change = value - before.get((sample, labels), 0.0)
        if change:
            changes[tuple((k, v) for k, v in labels if k not in fixed)] = change
    return changes


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


class RefusingNotifier:
    """Delivers every notification except those to ``refused``, which fail for good."""

    def __init__(self, refused: set[str]) -> None:
        self.refused = refused
        self.sent: list[str] = []

    def send(self, notification: Any) -> None:
        if notification.recipient in self.refused:
            raise fundcore.PermanentDeliveryError("mailbox unavailable")
        self.sent.append(notification.recipient)


@pytest.fixture
def quiet_api(engine: Any) -> Iterator[TestClient]:
    """An app whose dispatcher is not started (its rounds are run by the test), with a notifier
    that refuses bob@example.com for good."""
    app = create_app(
        make_settings(), engine=engine, notifier=RefusingNotifier({"bob@example.com"}), start_dispatcher=False
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_metrics_are_public_text_and_not_in_the_openapi_document(api):
    assert api.get("/metrics").status_code == 200  # no token
    assert api.get("/metrics", headers={"Authorization": "Bearer not-a-token"}).status_code == 200
    head = api.head("/metrics")
    assert head.status_code == 200 and head.content == b"" and head.headers["content-type"].startswith("text/plain")
    assert_envelope(api.post("/metrics"), 405, "METHOD_NOT_ALLOWED")
    document = api.get("/openapi.json")
    assert document.status_code == 200
    assert "/metrics" not in document.json()["paths"] and "/metrics" not in document.text
    families = {family.name: family.type for family in text_string_to_metric_families(api.get("/metrics").text)}
    assert families["http_requests"] == "counter" and families["http_request_duration_seconds"] == "histogram"
    assert families["fundcore_outbox_entries"] == "gauge"
    assert families["fundcore_outbox_oldest_pending_age_seconds"] == "gauge"


def test_counters_move_by_exactly_the_requests_and_operations_made(api):
    before = scrape(api.get)
    ana, bob = register(api, "Ana"), register(api, "Bob")

    def subscribe(client: dict[str, Any], body: dict[str, Any]) -> Any:
        return api.post(f"/clients/{client['id']}/subscriptions", json=body, headers=ADMIN)

    assert subscribe(ana, {"fund_id": 1}).status_code == 201
    assert subscribe(ana, {"fund_id": 2}).status_code == 201
    assert subscribe(bob, {"fund_id": 1}).status_code == 201
    assert_envelope(subscribe(ana, {"fund_id": 1}), 409, "ALREADY_SUBSCRIBED")
    assert_envelope(subscribe(bob, {"fund_id": 2, "amount": "1000"}), 422, "BELOW_MINIMUM")
    assert_envelope(subscribe(bob, {"fund_id": 2, "amount": "1000"}), 422, "BELOW_MINIMUM")
    assert_envelope(subscribe(bob, {"fund_id": 99}), 404, "FUND_NOT_FOUND")
    assert api.delete(f"/clients/{ana['id']}/subscriptions/2", headers=ADMIN).status_code == 200
    assert api.get("/funds", headers=ADMIN).status_code == 200
    assert api.get("/funds").status_code == 401
    assert api.get("/no/such/path").status_code == 404
    assert api.head("/health").status_code == 200
    after = scrape(api.get)

    subscriptions = "/clients/{client_id}/subscriptions"
    assert moved(before, after, "http_requests_total") == {
        labels(method="GET", route="/metrics", status="2xx"): 1,  # the first scrape
        labels(method="POST", route="/clients", status="2xx"): 2,
        labels(method="POST", route=subscriptions, status="2xx"): 3,
        labels(method="POST", route=subscriptions, status="4xx"): 4,
        labels(method="DELETE", route=subscriptions + "/{fund_id}", status="2xx"): 1,
        labels(method="GET", route="/funds", status="2xx"): 1,
        labels(method="GET", route="/funds", status="4xx"): 1,
        labels(method="GET", route="<unmatched>", status="4xx"): 1,
        labels(method="HEAD", route="/health", status="2xx"): 1,
    }
    assert moved(before, after, "http_request_duration_seconds_count") == {
        labels(method="GET", route="/metrics"): 1,
        labels(method="POST", route="/clients"): 2,
        labels(method="POST", route=subscriptions): 7,
        labels(method="DELETE", route=subscriptions + "/{fund_id}"): 1,
        labels(method="GET", route="/funds"): 2,
        labels(method="GET", route="<unmatched>"): 1,
        labels(method="HEAD", route="/health"): 1,
    }
    operations = moved(before, after, "fundcore_operations_total")
    operations.pop(labels(operation="dispatch_notifications", result="ok"), None)  # the dispatcher's rounds
    assert operations == {
        labels(operation="register_client", result="ok"): 2,
        labels(operation="subscribe", result="ok"): 3,
        labels(operation="subscribe", result="ALREADY_SUBSCRIBED"): 1,
        labels(operation="subscribe", result="BELOW_MINIMUM"): 2,
        labels(operation="subscribe", result="FUND_NOT_FOUND"): 1,
        labels(operation="cancel", result="ok"): 1,
    }
    # the engine's duration histogram: every call counted, in the engine's own buckets, each
    # bucket as the engine's recorder has it (the app mirrors the process's recorder)
    durations = moved(before, after, "fundcore_operation_duration_seconds_count")
    assert durations[labels(operation="subscribe")] == 7 and durations[labels(operation="cancel")] == 1
    assert (
        moved(before, after, "fundcore_operation_duration_seconds_bucket", operation="subscribe")[labels(le="+Inf")]
        == 7
    )
    (recorded,) = [
        series
        for series in fundcore.metrics()
        if series["name"] == "fundcore_operation_duration_seconds" and series["labels"] == {"operation": "subscribe"}
    ]
    assert recorded["type"] == "histogram"
    exported = sorted(
        (float(dict(key)["le"]), value)
        for (name, key), value in after.items()
        if name == "fundcore_operation_duration_seconds_bucket" and dict(key)["operation"] == "subscribe"
    )
    assert exported == [(bound, float(count)) for bound, count in recorded["buckets"]]
    assert after[("fundcore_operation_duration_seconds_sum", labels(operation="subscribe"))] == pytest.approx(
        recorded["sum"]
    )

    # the four notifications (three subscriptions, one cancellation) are delivered by the dispatcher
    def deliveries() -> dict[tuple[tuple[str, str], ...], float] | None:
        delivered = moved(before, scrape(api.get), "fundcore_deliveries_total")
        return delivered if delivered.get(labels(outcome="delivered")) == 4 else None

    assert deliveries_with_pause(deliveries) == {labels(outcome="delivered"): 4}
    final = scrape(api.get)
    outbox = {dict(key)["status"]: value for (name, key), value in final.items() if name == "fundcore_outbox_entries"}
    assert outbox == {"pending": 0, "failed": 0, "delivered": 4}
    assert final[("fundcore_outbox_oldest_pending_age_seconds", ())] == 0


def deliveries_with_pause(poll: Any) -> Any:
    """``poll()`` once it holds, and again a moment later (nothing more was counted meanwhile)."""
    deadline = time.monotonic() + 10
    while (found := poll()) is None:
        assert time.monotonic() < deadline, "the deliveries were not counted within 10 s"
        time.sleep(0.02)
    time.sleep(0.2)
    again = poll()
    assert again == found, (found, again)
    return found


def test_outbox_gauges_and_delivery_failures_follow_the_store(quiet_api):
    api = quiet_api
    ana, bob = register(api, "Ana"), register(api, "Bob")
    first_at = time.monotonic()
    assert api.post(f"/clients/{ana['id']}/subscriptions", json={"fund_id": 1}, headers=ADMIN).status_code == 201
    assert api.post(f"/clients/{bob['id']}/subscriptions", json={"fund_id": 1}, headers=ADMIN).status_code == 201
    time.sleep(0.3)
    before = scrape(api.get)
    waited = time.monotonic() - first_at
    outbox = {dict(key)["status"]: value for (name, key), value in before.items() if name == "fundcore_outbox_entries"}
    assert outbox == {"pending": 2, "failed": 0, "delivered": 0}
    age = before[("fundcore_outbox_oldest_pending_age_seconds", ())]
    assert 0.25 <= age <= waited + 0.5, (age, waited)

    dispatcher = api.app.state.host.dispatcher
    assert dispatcher.run_once() == {"delivered": 1, "retried": 0, "failed": 1}
    after = scrape(api.get)
    outbox = {dict(key)["status"]: value for (name, key), value in after.items() if name == "fundcore_outbox_entries"}
    assert outbox == {"pending": 0, "failed": 1, "delivered": 1}
    assert after[("fundcore_outbox_oldest_pending_age_seconds", ())] == 0
    assert moved(before, after, "fundcore_deliveries_total") == {
        labels(outcome="delivered"): 1,
        labels(outcome="failed"): 1,
    }


#: A metric name in a PromQL expression (the host's and the engine's all start so).
_METRIC = re.compile(r"(?<![\w:])((?:http|fundcore)_[a-z_]+)(?:\{([^}]*)\})?")
_MATCHER_LABEL = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
_BY = re.compile(r"by \(([^)]*)\)")


def test_every_metric_the_dashboard_queries_is_in_a_real_scrape(quiet_api):
    api = quiet_api
    ana, bob = register(api, "Ana"), register(api, "Bob")
    for client in (ana, bob):
        assert api.post(f"/clients/{client['id']}/subscriptions", json={"fund_id": 1}, headers=ADMIN).status_code == 201
    assert_envelope(
        api.post(f"/clients/{ana['id']}/subscriptions", json={"fund_id": 1}, headers=ADMIN), 409, "ALREADY_SUBSCRIBED"
    )
    api.app.state.host.dispatcher.run_once()  # one delivered, one failed
    samples = scrape(api.get)
    label_names: dict[str, set[str]] = {}
    for name, sample_labels in samples:
        label_names.setdefault(name, set()).update(key for key, _ in sample_labels)

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["templating"]["list"][0]["type"] == "datasource"
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    titles = " / ".join(panel["title"] for panel in dashboard["panels"])
    for wanted in (
        "throughput",
        "Refusals by code",
        "p50 / p99",
        "Outbox depth",
        "Oldest pending",
        "Delivery failures",
    ):
        assert wanted in titles, titles
    queried: set[str] = set()
    for expression in expressions:
        names = []
        for name, matchers in _METRIC.findall(expression):
            assert name in label_names, f"{name} (in {expression}) is not in a scrape"
            used = set(_MATCHER_LABEL.findall(matchers))
            assert used <= label_names[name], f"{name} has no label {used - label_names[name]}: {expression}"
            names.append(name)
        assert names, expression
        for grouped in _BY.findall(expression):
            by = {label.strip() for label in grouped.split(",")}
            assert any(by <= label_names[name] for name in names), f"no series of {names} has {by}"
        queried.update(names)
    assert queried == {
        "fundcore_operations_total",
        "fundcore_operation_duration_seconds_bucket",
        "fundcore_outbox_entries",
        "fundcore_outbox_oldest_pending_age_seconds",
        "fundcore_deliveries_total",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
    }


def test_the_engine_is_mirrored_in_the_background(api):
    """Without a scrape, the app adds the engine's counts to its metrics within about a second
    (another worker's scrape reads them from there)."""
    host_metrics = api.app.state.metrics
    key = ("fundcore_operations_total", labels(operation="register_client", result="ok"))
    host_metrics.sync_engine()  # what the process counted before this app started
    before = parse(host_metrics.exposition().decode()).get(key, 0.0)
    register(api, "Ana")
    started = time.monotonic()
    wait_until(lambda: parse(host_metrics.exposition().decode()).get(key, 0.0) == before + 1, timeout_s=5)
    assert time.monotonic() - started < ENGINE_MIRROR_INTERVAL_S + 1


def test_a_second_app_in_the_process_counts_apart(app_factory):
    """Each app keeps its own registry: two apps in one process count their own requests."""
    first, second = app_factory(notifier=RecordingNotifier()), app_factory(notifier=RecordingNotifier())
    before = scrape(second.get)
    for _ in range(3):
        assert first.get("/health").status_code == 200
    after = scrape(second.get)
    assert moved(before, after, "http_requests_total") == {labels(method="GET", route="/metrics", status="2xx"): 1}
    assert ("http_requests_total", labels(method="GET", route="/health", status="2xx")) in scrape(first.get)


def _table_metrics(page: Path, heading: str) -> set[str]:
    """The metric names in the first column of the table under ``heading``."""
    text = page.read_text(encoding="utf-8").split(heading + "\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", text, re.M))


def test_the_readme_lists_every_metric_the_host_exposes(quiet_api):
    """The host README's table: the engine's metrics as docs/operations.md lists them, and the
    host's own, each of which a scrape shows."""
    repo = Path(__file__).resolve().parents[3]
    listed = _table_metrics(repo / "examples/fastapi_host/README.md", "## Metrics")
    engine = _table_metrics(repo / "docs/operations.md", "## Observability")
    assert engine and engine <= listed
    own = listed - engine
    assert own == {
        "http_requests_total",
        "http_request_duration_seconds",
        "fundcore_outbox_entries",
        "fundcore_outbox_oldest_pending_age_seconds",
    }
    register(quiet_api, "Ana")
    families = {family.name for family in text_string_to_metric_families(quiet_api.get("/metrics").text)}
    assert {name.removesuffix("_total") for name in own} <= families


def test_a_multiprocess_directory_given_is_emptied_of_an_earlier_run(live_host, tmp_path):
    """``PROMETHEUS_MULTIPROC_DIR`` set by the operator: the host starts by removing the files an
    earlier run left there (prometheus_client would add them up), then keeps its own there."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    (shared / "counter_999999.db").write_bytes(b"left by an earlier run")
    (shared / "notes.txt").write_text("not prometheus_client's", encoding="utf-8")
    host = live_host(env={"PROMETHEUS_MULTIPROC_DIR": str(shared)})
    status, body, _ = http_call("GET", f"{host.url}/metrics")
    assert status == 200
    samples = parse(body.decode("utf-8"))
    assert samples[("http_requests_total", labels(method="GET", route="/health", status="2xx"))] >= 1
    files = {path.name for path in shared.iterdir()}
    assert "counter_999999.db" not in files and "notes.txt" in files
    assert f"counter_{host.process.pid}.db" in files
