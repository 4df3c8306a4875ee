"""What a leaderboard table says, in words and in its few default columns.

Shared by the HTML page and the markdown pages: which columns a reader sees first (rank, upsampler,
the quality metric, the checkerboard reading, speed), which columns are constant (printed once in a
caption), each column's decimals (:func:`~lightning_checkerboard.leaderboard.formatting.column_decimals`),
each row's checkerboard :class:`~lightning_checkerboard.leaderboard.formatting.Reading`, the verdict
sentence above a table, and the glossary of every column.
"""

from __future__ import annotations

import math
from typing import Any

from lightning_checkerboard.leaderboard.aggregate import METRICS, Row, Table
from lightning_checkerboard.leaderboard.formatting import Reading, column_decimals, largest_bound, number, stat_text
from lightning_checkerboard.metrics.directions import METRIC_INFO

__all__ = [
    "BOUNDS",
    "GLOSSARY",
    "artifact_key",
    "constant_keys",
    "decimals",
    "default_keys",
    "heading",
    "metric_keys",
    "reading",
    "seed_values",
    "verdict",
]

#: Scores printed with their 95 % bound: score key -> bound key.
BOUNDS = {"checkerboard": "checkerboard_upper", "residual_checkerboard": "residual_checkerboard_upper"}

#: What each column means, for the page's glossary and its headings' tooltips.
GLOSSARY: dict[str, str] = {
    "rank": "1 is best by the table's quality metric. Rows share a rank unless Welch's t-test over seeds separates "
            "them at 95 % (Holm-adjusted over the table): a shared rank means \"not separated\", not \"equal\". A row "
            "no better than its baseline (the model before training) did not learn and gets no rank.",
    "upsampler": "The registered upsampler (one per stage) and its options; the marker is its colour and shape in "
                 "every plot.",
    "psnr": "Peak signal-to-noise ratio against the target images, in dB; higher is better.",
    "ssim": "Structural similarity against the target images, 0 to 1; higher is better.",
    "fid": "Fréchet Inception distance to held-out photographs; lower is better.",
    "swd": "Sliced Wasserstein distance between patches of generated and held-out images (needs no download); "
           "lower is better.",
    "heldout_loss": "The style-transfer loss (content + style) on held-out photographs; lower is better.",
    "psnr_bicubic": "PSNR of bicubic interpolation on the same images: the reference every upsampler should beat.",
    "ssim_bicubic": "SSIM of bicubic interpolation on the same images.",
    "kid": "Kernel Inception distance; lower is better.",
    "precision": "Share of generated images within the real images' manifold; higher is better.",
    "recall": "Share of real images within the generated images' manifold; higher is better.",
    "checkerboard": "Amplitude of the periodic grid pattern (periods 2, 4, 8) in the output, in 8-bit grey levels, "
                    "after removing what natural images carry. 0 reads \"none detected\"; the bound is the largest "
                    "amplitude the measurement cannot rule out (95 %).",
    "checkerboard_upper": "95 % upper bound of the checkerboard amplitude (the largest pattern the measurement cannot "
                          "rule out).",
    "residual_checkerboard": "Checkerboard amplitude of the error (output − target), in 8-bit levels: the pattern an "
                             "upsampler adds that the target does not have.",
    "residual_checkerboard_upper": "95 % upper bound of the residual checkerboard amplitude.",
    "checkerboard_ratio": "The checkerboard amplitude divided by the images' own contrast (their pixel std): a "
                          "pattern hidden by low-contrast output still shows here; lower is better.",
    "spectral_distance": "How far the output's power spectrum is from real images' in the upper half of the "
                         "frequencies (0 equal, at most 1); lower is better. It measures lost detail as well as "
                         "added patterns, so a blurry but clean upsampler can read high.",
    "gradient_checkerboard": "Checkerboard amplitude of the discriminator's input gradient on real images: the "
                             "pattern the generator is pushed towards; lower is better.",
    "images_per_second": "Training throughput, images per second on the machine that ran the grid (compare within "
                         "a table only); higher is better.",
    "pictures": "One sample per seed drawn at an integer zoom (no resampling), the region with the strongest "
                "period-2 pattern at 4×, and for super-resolution and the autoencoder the error ×8; click any "
                "picture for the run's sample grid at its native resolution. Grid columns: super-resolution bicubic "
                "| output | target, autoencoder target | output (its input), style transfer content | output, GAN "
                "samples only.",
}


def seed_values(row: Row, key: str) -> list[float]:
    """Each run's value of ``key``, seed order; empty unless every run of the row recorded it."""
    source = METRIC_INFO[key].source if key in METRIC_INFO else "metrics"
    values = [getattr(run, source).get(key) for run in row.runs]
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                             for v in values):
        return []
    return [float(v) for v in values]


def metric_keys(table: Table) -> list[str]:
    """The metrics some row of ``table`` has, in the leaderboard's column order; bounds excluded (they are
    printed inside their score's cell)."""
    return [key for key, _, _ in METRICS
            if key not in BOUNDS.values() and any(row.metrics.get(key) is not None for row in table.rows)]


def artifact_key(table: Table) -> str | None:
    """The checkerboard reading a reader sees first: of the error (output − target) where the task has a
    target, else of the output."""
    present = metric_keys(table)
    return next((key for key in ("residual_checkerboard", "checkerboard") if key in present), None)


def default_keys(table: Table) -> list[str]:
    """The metric columns shown by default: the quality metric, the checkerboard reading, the speed."""
    present = metric_keys(table)
    keys = [table.primary, artifact_key(table), "images_per_second"]
    return [key for key in keys if key is not None and key in present]


def constant_keys(table: Table) -> list[str]:
    """Metrics whose every row reads the same mean without spread (bicubic PSNR): one value, not a column.

    Checkerboard readings are never constant: rows that all read 0 still differ in their bounds."""
    if len(table.rows) < 2:
        return []
    constant = []
    for key in (k for k in metric_keys(table) if k not in BOUNDS):
        stats = [row.metrics.get(key) for row in table.rows]
        if all(s is not None and not s.std for s in stats) and len({s.mean for s in stats}) == 1:
            constant.append(key)
    return constant


def decimals(table: Table, key: str) -> int:
    """The decimals of column ``key`` (a bound uses its score's)."""
    score = next((s for s, b in BOUNDS.items() if b == key), key)
    stats = [row.metrics.get(score) for row in table.rows]
    return column_decimals([s.mean for s in stats if s], [s.std for s in stats if s])


def reading(table: Table, row: Row, key: str) -> Reading:
    """Row ``row``'s checkerboard reading of ``key`` (a key of :data:`BOUNDS`)."""
    stat, bound = row.metrics.get(key), row.metrics.get(BOUNDS[key])
    bounds = seed_values(row, BOUNDS[key])
    largest = largest_bound(bounds, bound and bound.mean, bound and bound.std, bound.n if bound else 0)
    scores = seed_values(row, key)
    if largest is not None and scores:
        largest = max(largest, max(scores))  # never a bound below a seed's own reading
    return Reading(stat and stat.mean, stat and stat.std, scores, largest, bool(bounds), decimals(table, key))


def heading(key: str) -> str:
    """A column heading with the metric's direction."""
    info = METRIC_INFO[key]
    return f"{info.label} {'↑' if info.higher_is_better else '↓'}"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _names(rows: list[Row]) -> str:
    return _join([row.label for row in rows])


def verdict(table: Table) -> str:
    """One paragraph from the numbers: the best row(s), the rows that leave a detected pattern with their
    levels, the rows with none, and the rows that did not learn.

    Example:
        >>> from lightning_checkerboard.leaderboard.aggregate import aggregate
        >>> from lightning_checkerboard.records import ResultRecord
        >>> def run(name, seed, swd, score):
        ...     return ResultRecord(run_id=f"{name}{seed}", task="gan", status="finished", dataset="photos",
        ...                         image_size=32, upsampler=name, upsampler_stages=[name], seed=seed, max_steps=9,
        ...                         metrics={"swd": swd, "checkerboard": score, "checkerboard_upper": score + 1})
        >>> runs = [run("deconv", s, 20 + s, 8.0 + s) for s in (0, 1)] + [run("nearest_conv", s, 9 + s, 0.0) for s in (0, 1)]
        >>> print(verdict(aggregate(runs).tables[0]))
        Best by SWD: nearest_conv (9.50 ± 0.71). Checkerboard pattern detected in deconv (8.50 ± 0.71 levels, 2 of 2 seeds). None detected: nearest_conv.
    """
    parts = []
    ranked = [row for row in table.rows if row.rank is not None]
    if table.primary is None:
        parts.append("Unranked: no quality metric was recorded by every run.")
    elif ranked:
        label = METRIC_INFO[table.primary].label
        digits = decimals(table, table.primary)
        best = [row for row in ranked if row.rank == 1]
        values = [f"{row.label} ({_stat(row, table.primary, digits)})" for row in best]
        if len(best) == 1:
            parts.append(f"Best by {label}: {values[0]}.")
        else:
            parts.append(f"Best by {label}, not separated from each other at 95 %: {_join(values)}.")
    else:
        parts.append("No row beats its baseline.")
    parts += _against_bicubic(table)
    key = artifact_key(table)
    if key is not None:
        what = "Checkerboard pattern in the error" if key == "residual_checkerboard" else "Checkerboard pattern"
        found, clean = [], []
        for row in table.rows:
            if row.learned is False:
                continue
            r = reading(table, row, key)
            if r.detected:
                seeds = f", {r.seeds_detected} of {len(r.scores)} seeds" if r.scores else ""
                found.append((r.mean or 0.0, f"{row.label} ({r.main()} levels{seeds})"))
            elif r.detected is False:
                clean.append(row)
        if found:
            parts.append(f"{what} detected in {_join([text for _, text in sorted(found, reverse=True)])}.")
        else:
            parts.append(f"{what}: none detected in any row.")
        if clean and found:
            parts.append(f"None detected: {_names(clean)}.")
    stuck = [row for row in table.rows if row.learned is False]
    if stuck:
        parts.append(f"Did not learn (no better than before training): {_names(stuck)}.")
    return " ".join(parts)


def _against_bicubic(table: Table) -> list[str]:
    """How many rows end above bicubic interpolation, where the table ranks by PSNR and records it."""
    if table.primary != "psnr":
        return []
    pairs = [(row.metrics.get("psnr"), row.metrics.get("psnr_bicubic")) for row in table.rows]
    pairs = [(p.mean, b.mean) for p, b in pairs if p is not None and b is not None]
    if not pairs:
        return []
    above = sum(p > b for p, b in pairs)
    reference = f" ({number(pairs[0][1], decimals(table, 'psnr_bicubic'))} dB)" if len({b for _, b in pairs}) == 1 else ""
    if above == len(pairs):
        return [f"Every row ends above bicubic{reference}."]
    return [f"{above} of {len(pairs)} rows end above bicubic{reference}."]


def _stat(row: Row, key: str, digits: int) -> str:
    stat = row.metrics.get(key)
    return stat_text(stat and stat.mean, stat and stat.std, digits) if stat else "–"


def constant_caption(table: Table) -> str:
    """``bicubic PSNR (dB) 30.68 in every row`` for the constant columns, or empty."""
    items = []
    for key in constant_keys(table):
        stat = table.rows[0].metrics[key]
        items.append(f"{METRIC_INFO[key].label} {number(stat.mean, decimals(table, key))}")
    return f"The same in every row: {', '.join(items)}." if items else ""


def settings_text(mapping: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in mapping.items()) or "–"
