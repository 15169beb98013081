"""Small helpers of the benchmark suite: summaries of samples, ratios, plain-text tables.

Everything here is pure (no network, no clock except :class:`Deadline`), so the numbers a table
shows are the numbers ``results.json`` holds.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable, Sequence
from typing import Any


def summary(samples: Sequence[float], *, scale: float = 1.0, digits: int = 3) -> dict[str, Any]:
    """Median, p90, min, max and count of ``samples`` (each times ``scale``), rounded.

    The median is what tables show: on a shared, noisy machine it moves least between runs.
    """
    if not samples:
        return {"n": 0, "median": None, "p90": None, "min": None, "max": None}
    values = sorted(s * scale for s in samples)
    return {
        "n": len(values),
        "median": round(statistics.median(values), digits),
        "p90": round(values[max(0, math.ceil(0.9 * len(values)) - 1)], digits),
        "min": round(values[0], digits),
        "max": round(values[-1], digits),
    }


def ratio(numerator: float | None, denominator: float | None, digits: int = 3) -> float | None:
    """``numerator / denominator`` rounded, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, digits)


def mb_per_s(nbytes: int, seconds: float) -> float:
    """Throughput in MB/s (10**6 bytes a second)."""
    return nbytes / seconds / 1e6 if seconds > 0 else math.inf


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (inf, nan) replaced by None, recursively: strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: '-' for None, thousands separators for ints, ``digits`` decimals for floats."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        if value != 0 and abs(value) < 10 ** -digits:
            return f"{value:.{digits}g}"
        return f"{value:,.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, digits: int = 2) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    cells = [[fmt(v, digits) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return "\n".join([line(list(headers)), "  ".join("-" * w for w in widths), *(line(r) for r in cells)])


class Deadline:
    """A time budget: ``expired`` once ``seconds`` have passed since it was made."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    @property
    def left(self) -> float:
        return self.seconds - self.elapsed

    @property
    def expired(self) -> bool:
        return self.elapsed >= self.seconds
