"""How a leaderboard's numbers read: digits set by the seeds' spread, bounds that never undercut a seed.

A column prints as many decimals as its seed-to-seed standard deviation deserves (two significant
digits of the typical std), so ``0.94519 ± 0.00060`` shows a difference that ``0.945 ± 0.001``
hides, and ``172.6 ± 6.8`` drops digits that are noise. A checkerboard bound is printed with its
score's decimals, rounded up (a bound rounded down would claim more than was measured), and stands
for the largest per-seed bound: when only a row's mean and std of the bounds are known, the
largest is at most ``mean + std·(n−1)/√n`` (Samuelson's inequality), and that is what is printed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

__all__ = ["NBSP", "Reading", "bound_text", "column_decimals", "largest_bound", "number", "stat_text"]

#: Keeps ``±`` and its numbers on one line in markdown and HTML.
NBSP = "\u00a0"
_MAX_DECIMALS = 6


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def column_decimals(means: Iterable[float | None], stds: Iterable[float | None]) -> int:
    """Decimals for a column: two significant digits of its median non-zero std; without any spread,
    three significant digits of its median absolute mean.

    Example:
        >>> column_decimals([172.6, 160.2], [6.77, 5.1]), column_decimals([0.9452, 0.9487], [0.0006, 0.0002])
        (1, 5)
        >>> column_decimals([30.68, 30.68], [0.0, 0.0]), column_decimals([469.3], [112.1])
        (1, 0)
    """
    spread = [abs(s) for s in stds if _finite(s) and s != 0]
    if spread:
        return max(0, min(_MAX_DECIMALS, 1 - math.floor(math.log10(statistics.median(spread)))))
    size = [abs(m) for m in means if _finite(m) and m != 0]
    if not size:
        return 2
    return max(0, min(_MAX_DECIMALS, 2 - math.floor(math.log10(statistics.median(size)))))


def number(value: float, decimals: int) -> str:
    """``value`` with ``decimals`` decimals (``-0.0`` prints as ``0.0``)."""
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def stat_text(mean: float | None, std: float | None, decimals: int, sep: str = " ") -> str:
    """``mean ± std`` (``–`` without a mean; no ``±`` for one run); ``sep`` goes around ``±``."""
    if not _finite(mean):
        return "–"
    text = number(mean, decimals)
    return text if not _finite(std) else f"{text}{sep}±{sep}{number(std, decimals)}"


def bound_text(bound: float, decimals: int) -> str:
    """``bound`` rounded up to ``decimals`` decimals, and at least one unit of the last one.

    Example:
        >>> bound_text(0.0659, 1), bound_text(0.0, 2), bound_text(11.13, 1)
        ('0.1', '0.01', '11.2')
    """
    unit = 10.0 ** -decimals
    # The small allowance keeps a bound that prints exactly (0.3 as 0.30000000000000004) from growing a unit.
    return number(max(unit, math.ceil(bound / unit - 1e-9) * unit), decimals)


def largest_bound(values: Sequence[float] | None, mean: float | None, std: float | None, n: int) -> float | None:
    """The largest per-seed bound: the largest of ``values`` when they are known, else at most
    ``mean + std·(n−1)/√n`` (never below any seed's bound).

    Example:
        >>> largest_bound([0.1, 0.3], None, None, 2), round(largest_bound(None, 1.0, 0.5, 3), 4)
        (0.3, 1.5774)
    """
    known = [v for v in values or () if _finite(v)]
    if known:
        return max(known)
    if not _finite(mean):
        return None
    return mean + (std if _finite(std) else 0.0) * (n - 1) / math.sqrt(n) if n > 1 else mean


class Reading:
    """A checkerboard column's reading of one row, in words: ``none detected (< 0.2)`` or
    ``8.7 ± 1.8`` with its largest per-seed bound.

    Args:
        mean, std: the score over seeds.
        scores: each seed's score when known.
        bound: the largest per-seed bound (see :func:`largest_bound`), or ``None``.
        exact: whether ``bound`` is a seed's own bound (else an upper limit from mean and std).
        decimals: of the score (the bound is rounded up to the same).
    """

    def __init__(self, mean: float | None, std: float | None, scores: Sequence[float], bound: float | None,
                 exact: bool, decimals: int) -> None:
        self.mean, self.std, self.scores, self.bound, self.exact = mean, std, list(scores), bound, exact
        self.decimals = decimals

    @property
    def detected(self) -> bool | None:
        """Whether some seed reads a pattern (``None`` without a score)."""
        if not _finite(self.mean):
            return None
        return any(s > 0 for s in self.scores) if self.scores else self.mean > 0

    @property
    def seeds_detected(self) -> int | None:
        """How many seeds read a pattern, when each seed's score is known."""
        return sum(s > 0 for s in self.scores) if self.scores else None

    def bound_words(self, sep: str = " ") -> str:
        if self.bound is None:
            return ""
        return f"<{sep}{bound_text(self.bound, self.decimals)}"

    def main(self, sep: str = " ") -> str:
        """The cell's first line; ``sep`` joins ``±`` and ``<`` to their numbers."""
        if self.detected is None:
            return "–"
        if not self.detected:
            bound = self.bound_words(sep)
            return f"none detected{f' ({bound})' if bound else ''}"
        return stat_text(self.mean, self.std, self.decimals, sep)

    def detail(self) -> str:
        """The cell's second line: the seeds' scores and the largest per-seed bound."""
        return " · ".join(self.detail_parts())

    def detail_parts(self) -> list[str]:
        """The pieces of :meth:`detail`, each to be kept on one line."""
        if not self.detected:
            return []
        parts = []
        if self.scores:
            parts.append("seeds " + " / ".join(number(s, self.decimals) for s in self.scores))
        if self.bound is not None:
            parts.append(f"largest bound {'' if self.exact else '≤' + NBSP}{bound_text(self.bound, self.decimals)}")
        return parts
