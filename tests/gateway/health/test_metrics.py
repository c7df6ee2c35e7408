"""``/metrics``: the documented gauges, request latency per route template, process metrics;
request and process metrics only for a scraper's credential."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample as ParsedSample

from gateway.auth.principals import ApiClient, Principal
from gateway.auth.tokens import issue_token
from gateway.health.prometheus import Metrics
from tests.gateway.app_fixtures import AppNode

DOCUMENTED = {
    "sekisho_ledger_tree_size",
    "sekisho_ledger_pending_entries",
    "sekisho_ledger_is_sequencer",
    "sekisho_ledger_audit_ok",
    "sekisho_ledger_audit_verified_size",
    "sekisho_ledger_audit_finding_index",
}


async def scraper(scopes: tuple[str, ...] = ("metrics",)) -> dict[str, str]:
    """Authorization headers of an API client (Prometheus: the ``metrics`` scope)."""
    client = await ApiClient.create(name=f"c{await ApiClient.all().count()}", scopes=list(scopes))
    return {"Authorization": f"Bearer {await issue_token(client=client)}"}


async def person(*roles: str) -> dict[str, str]:
    row = await Principal.create(
        username=f"p{await Principal.all().count()}", level="SECRET", roles=list(roles)
    )
    return {"Authorization": f"Bearer {await issue_token(principal=row)}"}


async def scrape(node: AppNode, headers: dict[str, str] | None = None) -> list[ParsedSample]:
    if headers is None:
        headers = await scraper()
    response = await node.client.get("/metrics", headers=headers)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = await response.text()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def request_count(samples: list[ParsedSample], route: str, status: str | None = None) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == "sekisho_http_request_duration_seconds_count"
        and s.labels["route"] == route
        and status in (None, s.labels["status"])
    )


async def test_documented_gauges_and_process_metrics_are_exposed(app_node: AppNode) -> None:
    names = {sample.name for sample in await scrape(app_node)}
    assert names >= DOCUMENTED
    assert "process_resident_memory_bytes" in names
    assert "process_cpu_seconds_total" in names


async def test_requests_are_counted_under_their_route_template(app_node: AppNode) -> None:
    for index in (0, 1, 7):
        await app_node.client.get(f"/api/v1/ledger/entries/{index}")
    await app_node.client.get("/no/such/route/abc123")

    samples = await scrape(app_node)
    routes = {s.labels.get("route") for s in samples if "route" in s.labels}
    assert "/api/v1/ledger/entries/{index}" in routes
    assert not any(route and route.startswith("/api/v1/ledger/entries/0") for route in routes)
    assert not any(route and "abc123" in route for route in routes)
    assert request_count(samples, "unmatched") == 1  # the portal sends it to sign in
    assert request_count(samples, "/api/v1/ledger/entries/{index}") == 3


async def test_errors_raised_by_handlers_are_counted_with_their_status(app_node: AppNode) -> None:
    response = await app_node.client.get("/api/v1/ledger/proof/inclusion?index=not-a-number")
    assert response.status == 400
    samples = await scrape(app_node)
    assert request_count(samples, "/api/v1/ledger/proof/inclusion", "400") == 1


def test_each_app_counts_only_its_own_requests() -> None:
    first, second = Metrics(), Metrics()
    first.requests.labels("GET", "/x", "200").observe(0.01)
    text = second.exposition([]).decode()
    assert 'route="/x"' not in text
    assert 'route="/x"' in first.exposition([]).decode()


def test_label_values_are_escaped() -> None:
    awkward = 'base "north"\\ops\nline two'
    text = Metrics().exposition([("sekisho_test_up", "Help.", {"witness": awkward}, 1)]).decode()
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "sekisho_test_up"]
    assert family.samples[0].labels == {"witness": awkward}
    assert family.type == "gauge"


async def requests_shown(node: AppNode, headers: dict[str, str]) -> bool:
    names = {sample.name for sample in await scrape(node, headers)}
    assert names >= DOCUMENTED  # the ledger's gauges, for anyone
    return bool(
        {"sekisho_http_request_duration_seconds_count", "process_cpu_seconds_total"} & names
    )


@pytest.mark.parametrize(
    ("who", "shown"),
    [
        ("anonymous", False),
        ("reader", False),
        ("officer", False),
        ("mirror", False),
        ("auditor", True),
        ("admin", True),
        ("scraper", True),
    ],
)
async def test_request_and_process_metrics_only_for_who_may_watch_the_node(
    app_node: AppNode, who: str, shown: bool
) -> None:
    """Counts by route and status (granted and refused reads, downloads) and process
    figures would show anyone the node's activity; the ledger's gauges are public."""
    await app_node.client.get("/api/v1/documents/0b8f6a52-8a1c-4a3e-9d55-5f1f3f0e0c11")
    headers = {
        "anonymous": {},
        "reader": await person("reader"),
        "officer": await person("officer"),
        "mirror": await scraper(("ledger-read",)),
        "auditor": await person("auditor"),
        "admin": await person("admin"),
        "scraper": await scraper(),
    }[who]
    assert await requests_shown(app_node, headers) is shown
