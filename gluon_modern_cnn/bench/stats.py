"""Summary statistics of repeated timings: the median and the interquartile range."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Sequence, Tuple

__all__ = ["Summary", "summarize", "quantile"]


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile of ``values`` by linear interpolation between order statistics
    (numpy's default method, so ``quantile(v, 0.5)`` is the median)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be between 0 and 1; got {q!r}")
    ordered = sorted(float(v) for v in values)
    if not ordered:
        raise ValueError("cannot take a quantile of no values; time at least one repeat")
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Summary:
    """Repeated measurements of one quantity: every value, their median, quartiles and IQR."""

    median: float
    q1: float
    q3: float
    values: Tuple[float, ...]

    @property
    def iqr(self) -> float:
        """The interquartile range ``q3 - q1``."""
        return self.q3 - self.q1

    def to_dict(self) -> Dict[str, Any]:
        return {**asdict(self), "iqr": self.iqr, "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Summary":
        return cls(float(data["median"]), float(data["q1"]), float(data["q3"]),
                   tuple(float(v) for v in data["values"]))

    def scaled(self, factor: float) -> "Summary":
        """The same summary with every value multiplied by ``factor`` (e.g. examples -> FLOPs)."""
        return Summary(self.median * factor, self.q1 * factor, self.q3 * factor,
                       tuple(v * factor for v in self.values))


def summarize(values: Sequence[float]) -> Summary:
    """Median, first and third quartile of ``values`` (at least one, all finite)."""
    values = tuple(float(v) for v in values)
    if not values:
        raise ValueError("cannot summarize no measurements; time at least one repeat")
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise ValueError(f"measurements must be finite numbers; got {bad[0]!r} among {values}")
    return Summary(quantile(values, 0.5), quantile(values, 0.25), quantile(values, 0.75), values)
