"""Helpers for golden tests: render a collector's items as exposition text and compare with a file.

Set UPDATE_GOLDEN=1 to rewrite the expected files (review the diff like code).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

from gpuwarden.agent.registry import CollectionFailed
from gpuwarden.health import HealthResult


class _Static:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


def split(items: Iterable[object]) -> tuple[list[Metric], list[HealthResult]]:
    metrics, health = [], []
    for item in items:
        if isinstance(item, HealthResult):
            health.append(item)
        elif isinstance(item, CollectionFailed):
            continue  # what the runner makes of it is tested in test_runner.py
        else:
            assert isinstance(item, Metric), f"unexpected item {item!r}"
            metrics.append(item)
    return metrics, health


def exposition(metrics: list[Metric]) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Static(metrics))
    return generate_latest(registry).decode()


def assert_golden(text: str, path: Path) -> None:
    if os.environ.get("UPDATE_GOLDEN") == "1" or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if os.environ.get("UPDATE_GOLDEN") != "1":
            raise AssertionError(f"golden file {path} was missing and has been written; re-run")
    assert text == path.read_text(), f"exposition differs from {path} (UPDATE_GOLDEN=1 rewrites it)"
