"""Prometheus metrics, one registry per bot so that tests can build several bots in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "copbot_events_handled", "Platform events handled", ["platform", "event"], registry=self.registry
        )
        self.duplicates = Counter(
            "copbot_events_duplicate",
            "Events skipped because already handled",
            ["platform"],
            registry=self.registry,
        )
        self.commands = Counter(
            "copbot_commands", "Commands by name and outcome", ["command", "outcome"], registry=self.registry
        )
        self.latency = Histogram(
            "copbot_handler_seconds",
            "Time spent handling one event, from receipt to committed",
            ["kind"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.job_runs = Counter(
            "copbot_scheduled_jobs",
            "Scheduled jobs run, by target and outcome",
            ["target", "outcome"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
