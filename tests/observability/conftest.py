"""The engine fixtures of the dispatch tests (fake runtime, the tests' catalog), and reading
a scrape."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.dispatch.conftest import engine, engine_factory, fake_runtime, settings  # noqa: F401

METRICS_TOKEN = "scrape-token-0123456789-abcdefghij"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape by (name, labels); parsing it also proves the format."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series is absent (a counter not yet incremented)."""
    return samples(text).get((name, frozenset(labels.items())), 0.0)
