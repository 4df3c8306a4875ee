"""The ranking rule of a leaderboard table: one quality metric, a baseline to beat, significance over seeds.

A table is ranked by one declared *primary* quality metric: the first of
:data:`~lightning_checkerboard.metrics.directions.QUALITY_METRICS` (PSNR and SSIM, then FID, then SWD)
that every run in the table has. Artifact scores, spectral distance and throughput are columns, not
ranks: a generator that learns nothing makes no artifacts either.

- **Did it learn?** Each record stores the same quality metric for a trivial baseline (for a GAN,
  its generator before training). A row whose mean is not better than its mean baseline is marked
  "did not learn", gets no rank and is listed below every row that learned.
- **Shared ranks.** Rows are listed by their mean. Going down the list, a row shares the rank of the
  first row of the group above it unless it is worse with significance (Welch's t-test on the
  per-seed values, two-sided); otherwise it starts a new group whose rank is its position. Each
  of the ``m`` comparisons a table makes (one per row after the first) is tested at Holm's
  step-down threshold: after ``r`` splits, at ``0.05 / (m - r)``, so the chance that a table shows
  any split between rows that are really equal stays at or below 5 % (with 10 identical rows of 3
  seeds, unadjusted tests split at least once in about a third of tables). Each row carries its
  adjusted p-value, ``min(1, p * (m - r))``. A shared rank means "not separated at 95 %", not
  "equal". Ranks never decrease down the list. With a single seed in
  either row there is no variance to test, and the means decide (p-value 0).

Pure Python (plus SciPy's t distribution): the rule is tested on its own, away from rendering.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from lightning_checkerboard.metrics.directions import QUALITY_METRICS

__all__ = [
    "CONFIDENCE",
    "TEST_NAME",
    "RankResult",
    "choose_primary",
    "holm_adjust",
    "rank_rows",
    "significantly_better",
    "welch_p_value",
]

#: Confidence of the two-sided test that separates two rows.
CONFIDENCE = 0.95
#: How the test is named in generated tables.
TEST_NAME = "Welch's t-test over seeds, two-sided, at Holm's step-down thresholds over the table's comparisons, 95 %"


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def choose_primary(values_by_metric: dict[str, Sequence[object]]) -> str | None:
    """The first quality metric for which every value (one per run) is a finite number, else ``None``.

    Example:
        >>> choose_primary({"fid": [12.0, None], "swd": [3.1, 2.9]})
        'swd'
        >>> choose_primary({"fid": [12.0, 13.0], "swd": [3.1, 2.9]})
        'fid'
    """
    for key in QUALITY_METRICS:
        values = values_by_metric.get(key)
        if values and all(_finite(v) for v in values):
            return key
    return None


def significantly_better(a: Sequence[float], b: Sequence[float], higher_is_better: bool,
                         confidence: float = CONFIDENCE) -> bool:
    """Whether the values ``a`` beat ``b`` (one value per seed) by Welch's two-sided t-test.

    With fewer than two values on either side there is no variance to test and the means decide.
    Identical constant samples tie; distinct constant samples are separated.

    Example:
        >>> significantly_better([1.0, 1.1, 0.9], [5.0, 5.2, 4.8], higher_is_better=False)
        True
        >>> significantly_better([1.0, 3.0, 2.0], [2.5, 1.5, 2.2], higher_is_better=False)
        False
    """
    return welch_p_value(a, b, higher_is_better) < 1.0 - confidence


def welch_p_value(a: Sequence[float], b: Sequence[float], higher_is_better: bool) -> float:
    """Two-sided p-value of Welch's t-test that ``a`` and ``b`` have equal means; 1 when ``a`` is not better.

    With fewer than two values on either side, or two distinct constant samples, there is no variance
    to test and the means decide: 0 when ``a``'s mean is better.

    Example:
        >>> round(welch_p_value([1.0, 1.1, 0.9], [5.0, 5.2, 4.8], higher_is_better=False), 5)
        9e-05
        >>> welch_p_value([2.0, 2.0], [1.0, 1.0], higher_is_better=False)
        1.0
    """
    mean_a, mean_b = statistics.fmean(a), statistics.fmean(b)
    better = mean_a > mean_b if higher_is_better else mean_a < mean_b
    if not better:
        return 1.0
    if len(a) < 2 or len(b) < 2:
        return 0.0
    var_a, var_b = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if var_a + var_b == 0.0:
        return 0.0  # both constant and the means differ
    from scipy.stats import t as student_t

    t = abs(mean_a - mean_b) / math.sqrt(var_a + var_b)
    dof = (var_a + var_b) ** 2 / (var_a**2 / (len(a) - 1) + var_b**2 / (len(b) - 1))
    return 2.0 * float(student_t.sf(t, dof))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in input order: reject where the adjusted value is below alpha.

    The ``j``-th smallest of ``m`` p-values is multiplied by ``m - j + 1``, capped at 1 and made
    non-decreasing; rejecting every adjusted value below ``alpha`` keeps the chance of any false
    rejection at or below ``alpha`` whatever the dependence between the tests.

    Example:
        >>> holm_adjust([0.01, 0.04, 0.03])
        [0.03, 0.06, 0.06]
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for step, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - step) * p_values[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class RankResult:
    """Where one row stands.

    Attributes:
        rank: 1 for the best; shared by rows that are not significantly apart; ``None`` for a row
            that did not learn or when the table has no primary metric.
        learned: whether the row's mean beats its mean baseline (``None`` without a baseline).
        p_adjusted: Holm-adjusted p-value of the row's comparison with the first row of the group
            above (a new group: what separates it; a shared rank: why it was not separated);
            ``None`` for the first ranked row and rows without a rank.
    """

    rank: int | None
    learned: bool | None
    p_adjusted: float | None = None


def rank_rows(values: Sequence[Sequence[float]], baselines: Sequence[Sequence[float]], higher_is_better: bool,
              confidence: float = CONFIDENCE) -> tuple[list[int], list[RankResult]]:
    """Rank rows by their per-seed values of the primary metric, against their baselines.

    Args:
        values: per row, the primary metric of each of its runs (at least one).
        baselines: per row, the baseline values its runs recorded (may be empty: no baseline).
        higher_is_better: the primary metric's direction.
        confidence: of the test that separates two rows.

    Returns:
        The order to list the rows in (indices: rows that learned by rank then mean, then the rest by
        mean) and each row's :class:`RankResult`, in input order.

    Example:
        >>> order, results = rank_rows([[2.0, 2.1], [2.05, 1.95], [9.0, 9.5]], [[8.0], [8.0], [9.0]],
        ...                            higher_is_better=False)
        >>> order, [r.rank for r in results], [r.learned for r in results]
        ([1, 0, 2], [1, 1, None], [True, True, False])
    """
    info_sign = -1.0 if higher_is_better else 1.0
    means = [statistics.fmean(v) for v in values]
    learned: list[bool | None] = []
    for row_values, row_baselines in zip(values, baselines):
        finite = [b for b in row_baselines if _finite(b)]
        if not finite:
            learned.append(None)
            continue
        mean, base = statistics.fmean(row_values), statistics.fmean(finite)
        learned.append(mean > base if higher_is_better else mean < base)
    ranked = sorted((i for i, ok in enumerate(learned) if ok is not False), key=lambda i: (info_sign * means[i], i))
    ranks, adjusted = _group(ranked, values, higher_is_better, 1.0 - confidence)
    order = ranked + sorted((i for i in range(len(values)) if i not in ranks), key=lambda i: (info_sign * means[i], i))
    results = [RankResult(ranks.get(i), learned[i], adjusted.get(i)) for i in range(len(values))]
    return order, results


def _group(ranked: list[int], values: Sequence[Sequence[float]], higher_is_better: bool,
           alpha: float) -> tuple[dict[int, int], dict[int, float]]:
    """Ranks and Holm-adjusted p-values of the rows ``ranked`` (best first), in one pass down the list.

    Every row but the first is compared once with the first row of its group: ``m = len(ranked) - 1``
    comparisons. After ``r`` splits the next comparison is tested at ``alpha / (m - r)`` (Holm's
    step-down thresholds), so its adjusted p-value is ``min(1, p * (m - r))`` and it splits when that
    is below ``alpha``. Under the hypothesis that all rows are equal, the first split needs a p-value
    below ``alpha / m``; in general, before a split between equal rows at most ``m - m0`` real splits
    can have been made, so each of the ``m0`` equal comparisons is tested at ``alpha / m0`` or less,
    and the chance of any false split stays at or below ``alpha``.
    """
    comparisons = max(len(ranked) - 1, 0)
    ranks: dict[int, int] = {}
    adjusted: dict[int, float] = {}
    leader: int | None = None
    splits = 0
    for position, i in enumerate(ranked, 1):
        if leader is None:
            ranks[i], leader = position, i
            continue
        p = welch_p_value(values[leader], values[i], higher_is_better)
        adjusted[i] = min(1.0, p * (comparisons - splits))
        if adjusted[i] < alpha:
            ranks[i], leader = position, i
            splits += 1
        else:
            ranks[i] = ranks[leader]
    return ranks, adjusted
