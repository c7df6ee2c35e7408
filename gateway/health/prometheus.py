"""Prometheus exposition through ``prometheus_client``: one registry per application.

Each app (gateway or witness) holds its own :class:`Metrics`: request latency
by method, route template and status, the process collectors, and the state
gauges its ``/metrics`` handler reads fresh at each scrape. A registry per app,
not the library's global one, because tests start many apps in one process.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "METRICS", "Metrics", "Sample", "metrics_response"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""What ``generate_latest`` writes for our (legacy-charset) names, as scrapers expect."""
UNMATCHED = "unmatched"
"""The route label of requests no route matched (never the raw path: it is unbounded)."""

Sample = tuple[str, str, Mapping[str, str], float]
"""(metric name, help text, labels, value) of one state gauge."""


class _Snapshot(Collector):
    """The state gauges read for one scrape, as metric families."""

    def __init__(self, samples: Iterable[Sample]) -> None:
        self._families: dict[str, GaugeMetricFamily] = {}
        for name, help_text, labels, value in samples:
            family = self._families.get(name)
            if family is None:
                family = GaugeMetricFamily(name, help_text, labels=sorted(labels))
                self._families[name] = family
            family.add_metric([labels[key] for key in sorted(labels)], float(value))

    def collect(self) -> Iterator[Metric]:
        yield from self._families.values()


class Metrics:
    """One application's registry: request histogram and process collectors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Histogram(
            "sekisho_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Time each request under its route template (outermost, so errors count as sent)."""
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.requests.labels(request.method, route_template(request), str(status)).observe(
                time.perf_counter() - started
            )

    def exposition(self, samples: Iterable[Sample], *, with_requests: bool = True) -> bytes:
        """The text format: this scrape's state gauges, then (``with_requests``) the
        registry's request and process metrics."""
        snapshot = CollectorRegistry(auto_describe=False)
        snapshot.register(_Snapshot(samples))
        text = generate_latest(snapshot)
        return text + generate_latest(self.registry) if with_requests else text


def route_template(request: web.Request) -> str:
    """The matched route's template (``/api/v1/documents/{id}``), or ``unmatched``."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


def metrics_response(
    metrics: Metrics, samples: Iterable[Sample], *, with_requests: bool = True
) -> web.Response:
    """A ``/metrics`` answer (the state gauges only, unless ``with_requests``)."""
    body = metrics.exposition(samples, with_requests=with_requests)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


METRICS = web.AppKey("metrics", Metrics)
