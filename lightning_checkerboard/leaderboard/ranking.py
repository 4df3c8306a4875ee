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
  per-seed values, two-sided, at 95 %); otherwise it starts a new group whose rank is its position.
  Rows whose seeds overlap with a group's best therefore share its rank, and ranks never decrease
  down the list. With a single seed in either row there is no variance to test, and the means decide.

Pure Python (plus SciPy's t distribution): the rule is tested on its own, away from rendering.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from lightning_checkerboard.metrics.directions import QUALITY_METRICS

__all__ = ["CONFIDENCE", "TEST_NAME", "RankResult", "choose_primary", "rank_rows", "significantly_better"]

#: Confidence of the two-sided test that separates two rows.
CONFIDENCE = 0.95
#: How the test is named in generated tables.
TEST_NAME = "Welch's t-test over seeds, two-sided, 95 %"


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
    mean_a, mean_b = statistics.fmean(a), statistics.fmean(b)
    better = mean_a > mean_b if higher_is_better else mean_a < mean_b
    if not better:
        return False
    if len(a) < 2 or len(b) < 2:
        return True
    var_a, var_b = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if var_a + var_b == 0.0:
        return True  # both constant and the means differ
    from scipy.stats import t as student_t

    t = abs(mean_a - mean_b) / math.sqrt(var_a + var_b)
    dof = (var_a + var_b) ** 2 / (var_a**2 / (len(a) - 1) + var_b**2 / (len(b) - 1))
    p_value = 2.0 * float(student_t.sf(t, dof))
    return p_value < 1.0 - confidence


@dataclass(frozen=True)
class RankResult:
    """Where one row stands.

    Attributes:
        rank: 1 for the best; shared by rows that are not significantly apart; ``None`` for a row
            that did not learn or when the table has no primary metric.
        learned: whether the row's mean beats its mean baseline (``None`` without a baseline).
    """

    rank: int | None
    learned: bool | None


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
    ranks: dict[int, int] = {}
    leader: int | None = None
    for position, i in enumerate(ranked, 1):
        if leader is not None and not significantly_better(values[leader], values[i], higher_is_better, confidence):
            ranks[i] = ranks[leader]
        else:
            ranks[i], leader = position, i
    order = ranked + sorted((i for i in range(len(values)) if i not in ranks), key=lambda i: (info_sign * means[i], i))
    results = [RankResult(ranks.get(i), learned[i]) for i in range(len(values))]
    return order, results

