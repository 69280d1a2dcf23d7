"""Percentiles and metric lines shared by the bench modules."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the value below which p percent of the samples fall."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def metric(name: str, value: float | int, unit: str) -> dict:
    return {"metric": name, "value": round(value, 4) if isinstance(value, float) else value, "unit": unit}


def latency_metrics(name: str, samples_s: Sequence[float]) -> list[dict]:
    """p50 and p99 of samples taken in seconds, reported in milliseconds."""
    return [
        metric(f"{name}.p50", percentile(samples_s, 50) * 1000, "ms"),
        metric(f"{name}.p99", percentile(samples_s, 99) * 1000, "ms"),
    ]
