"""Prometheus metrics, in a registry per app so tests and several apps in one process stay apart."""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
"""The request methods the latency histogram names; any other is counted as OTHER."""


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.inbound = Counter(
            "lapor_inbound_events",
            "Webhook events accepted, by channel and kind",
            ["channel", "kind"],
            registry=self.registry,
        )
        self.webhook_rejected = Counter(
            "lapor_webhook_rejected",
            "Webhook requests refused, by channel and HTTP status",
            ["channel", "status"],
            registry=self.registry,
        )
        self.outbox_depth = Gauge(
            "lapor_outbox_pending",
            "Outbox rows not yet sent, by channel",
            ["channel"],
            registry=self.registry,
        )
        self.outbox_oldest = Gauge(
            "lapor_outbox_oldest_seconds", "Age of the oldest unsent outbox row", registry=self.registry
        )
        self.sends = Counter(
            "lapor_outbox_sends",
            "Send attempts by channel, outcome (sent, retry, failed, rerouted, reconciled) and provider code",
            ["channel", "outcome", "code"],
            registry=self.registry,
        )

        self.http_latency = Histogram(
            "lapor_http_request_seconds",
            "Request handling time by route pattern (never the raw path), method and status class; "
            "a webhook's includes its durable commit",
            ["route", "method", "status"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self.overdue = Gauge(
            "lapor_complaints_overdue",
            "Complaints past their deadline: 'verification' (not yet verified) or 'handling' (departments)",
            ["stage"],
            registry=self.registry,
        )

        self._children: dict[tuple[Any, ...], Any] = {}
        self._http_observers: dict[tuple[Any, str, int], Callable[[float], None] | None] = {}

    def child(self, metric: Counter | Histogram, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered: every webhook counts and times itself, and the
        labels lookup (a lock and a tuple) costs as much as the count."""
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def http_observer(
        self, resource: Any, method: str, status: int, skip: Container[str] = ()
    ) -> Callable[[float], None] | None:
        """`http_latency.labels(route, method, status class).observe` for a request that `resource`
        (aiohttp's, None when nothing matched) answered with `status`; None for a route in `skip`.

        Remembered by the resource itself: naming the route and the status class and looking the
        child up by them cost more than the observation. A method outside HTTP's own is labelled
        OTHER, so whatever a client sends, the labels and this cache stay bounded (the app's
        resources, a dozen methods, the status codes).
        """
        if method not in HTTP_METHODS:
            method = "OTHER"
        key = (resource, method, status)
        try:
            return self._http_observers[key]
        except KeyError:
            route = resource.canonical if resource is not None else "unmatched"
            observer = None
            if route not in skip:
                observer = self.http_latency.labels(route, method, f"{status // 100}xx").observe
            self._http_observers[key] = observer
            return observer

    def render(self) -> bytes:
        return generate_latest(self.registry)
