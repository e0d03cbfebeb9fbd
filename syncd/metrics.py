"""Prometheus metrics (prometheus-client): HTTP calls counted as they happen, the rest read from the live runtime
and the store at scrape time, so nothing is counted twice and the hot path does no extra work."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)
HTTP_REQUESTS = Counter(
    "syncd_http_requests",
    "HTTP calls syncd made, by API and response status ('error' when no response came).",
    ["api", "status"],
    registry=REGISTRY,
)


def observe_http(api: str, status: int | str) -> None:
    HTTP_REQUESTS.labels(api=api, status=str(status)).inc()


@dataclass
class StreamSample:
    stream: str
    events: int
    duplicates: int
    quarantined: int
    position_age_s: float | None
    at_top: bool
    up: bool
    expires_in_s: float | None = None  # until Sell drops the oldest unread event (None: expired or unknown)
    expiry_warning: bool = False  # within `[sell] expiry_warning` of that, or expired


@dataclass
class SinkSample:
    sink: str
    outcomes: dict[str, int]
    pending: int
    dead: int
    oldest_pending_age_s: float | None
    paused: str | None


@dataclass
class LimiterSample:
    api: str
    waits: int
    waited_s: float
    pauses: int
    paused_until: float | None = None  # epoch seconds the current throttle pause ends (None: not paused)


@dataclass
class Sample:
    streams: list[StreamSample] = field(default_factory=list)
    sinks: list[SinkSample] = field(default_factory=list)
    limiters: list[LimiterSample] = field(default_factory=list)
    ready: bool = False


class RuntimeCollector(Collector):
    """Turns the latest `Sample` into metric families."""

    def __init__(self) -> None:
        self.sample = Sample()

    def collect(self) -> Iterator[Metric]:
        s = self.sample
        events = CounterMetricFamily("syncd_events_ingested", "New events stored, by stream.", labels=["stream"])
        dups = CounterMetricFamily("syncd_events_duplicate", "Repeated events absorbed, by stream.", labels=["stream"])
        quarantined = CounterMetricFamily(
            "syncd_items_quarantined", "Firehose items that could not be normalised.", labels=["stream"]
        )
        age = GaugeMetricFamily(
            "syncd_position_age_seconds",
            "Seconds since the stream's position last moved or was confirmed.",
            labels=["stream"],
        )
        at_top = GaugeMetricFamily(
            "syncd_stream_at_top", "1 when the stream's last page was at the head.", labels=["stream"]
        )
        up = GaugeMetricFamily("syncd_stream_up", "0 when the stream is expired or stopped.", labels=["stream"])
        expires = GaugeMetricFamily(
            "syncd_position_expires_in_seconds",
            "Seconds until Sell drops the oldest event the stream has not read (its position expires then).",
            labels=["stream"],
        )
        expiring = GaugeMetricFamily(
            "syncd_position_expiry_warning",
            "1 when the stream's position is within [sell] expiry_warning of expiring (or has expired).",
            labels=["stream"],
        )
        for st in s.streams:
            events.add_metric([st.stream], st.events)
            dups.add_metric([st.stream], st.duplicates)
            quarantined.add_metric([st.stream], st.quarantined)
            if st.position_age_s is not None:
                age.add_metric([st.stream], st.position_age_s)
            at_top.add_metric([st.stream], 1.0 if st.at_top else 0.0)
            up.add_metric([st.stream], 1.0 if st.up else 0.0)
            if st.expires_in_s is not None:
                expires.add_metric([st.stream], st.expires_in_s)
            expiring.add_metric([st.stream], 1.0 if st.expiry_warning else 0.0)
        yield from (events, dups, quarantined, age, at_top, up, expires, expiring)

        deliveries = CounterMetricFamily(
            "syncd_deliveries", "Delivery outcomes since start, by destination and outcome.", labels=["sink", "outcome"]
        )
        pending = GaugeMetricFamily("syncd_pending_deliveries", "Deliveries waiting, by destination.", labels=["sink"])
        dead = GaugeMetricFamily("syncd_dead_letters", "Dead-lettered deliveries, by destination.", labels=["sink"])
        oldest = GaugeMetricFamily(
            "syncd_oldest_pending_age_seconds", "Age of the oldest pending delivery.", labels=["sink"]
        )
        paused = GaugeMetricFamily(
            "syncd_destination_paused", "1 while the destination is paused, by reason.", labels=["sink", "reason"]
        )
        for sk in s.sinks:
            for outcome, n in sorted(sk.outcomes.items()):
                deliveries.add_metric([sk.sink, outcome], n)
            pending.add_metric([sk.sink], sk.pending)
            dead.add_metric([sk.sink], sk.dead)
            oldest.add_metric([sk.sink], sk.oldest_pending_age_s or 0.0)
            for reason in ("auth", "unavailable"):
                paused.add_metric([sk.sink, reason], 1.0 if sk.paused == reason else 0.0)
        yield from (deliveries, pending, dead, oldest, paused)

        waits = CounterMetricFamily("syncd_rate_limit_waits", "Calls that waited for the rate limiter.", labels=["api"])
        waited = CounterMetricFamily(
            "syncd_rate_limit_wait_seconds", "Seconds spent waiting for the rate limiter.", labels=["api"]
        )
        pauses = CounterMetricFamily(
            "syncd_rate_limit_pauses", "Whole-account pauses (429s, exhausted windows).", labels=["api"]
        )
        throttled = GaugeMetricFamily(
            "syncd_throttled_until_seconds",
            "When the current throttle pause of the API account ends (epoch seconds; 0 when not paused).",
            labels=["api"],
        )
        for lim in s.limiters:
            waits.add_metric([lim.api], lim.waits)
            waited.add_metric([lim.api], lim.waited_s)
            pauses.add_metric([lim.api], lim.pauses)
            throttled.add_metric([lim.api], lim.paused_until or 0.0)
        yield from (waits, waited, pauses, throttled)
        ready = GaugeMetricFamily("syncd_ready", "1 when /readyz would answer 200.")
        ready.add_metric([], 1.0 if s.ready else 0.0)
        yield ready


COLLECTOR = RuntimeCollector()
REGISTRY.register(COLLECTOR)


def exposition(sample: Sample) -> bytes:
    COLLECTOR.sample = sample
    return generate_latest(REGISTRY)
