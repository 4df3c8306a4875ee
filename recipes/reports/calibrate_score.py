"""Calibration of the checkerboard score: coverage of its 95 % bound and score ÷ truth, cell by cell.

    python recipes/reports/calibrate_score.py              # about 3-5 minutes on a 2-core CPU (4 sets per cell)
    python recipes/reports/calibrate_score.py --sets 20    # tighter coverage figures, about 5x longer
    python recipes/reports/calibrate_score.py --periods 16 32 48 --sizes 128 256 288 --sets 2  # 4-6 minutes

A pattern of known RMS amplitude (0.25 … 8 levels) is added to sets of 64 images, and the score and
its 95 % upper bound are read. Cells: period (2: the checkerboard; 4 and 8: a random zero-mean tile,
new per set), image size (32, 64, 128, 256 px) and image kind:

- ``photos``: seeded random crops of photographs that no test of the score uses (scikit-image's
  camera, brick, grass, gravel, moon and coins, greyscale repeated over three channels, and
  scikit-learn's china and flower);
- ``smooth``: generator-like images, the same crops brought down 8x (area average) and back up by
  three bilinear x2 stages, so all content sits below an eighth of the sampling rate;
- ``blocks``: the same crops brought down 8x and back up by three nearest x2 stages: equal 8x8
  blocks, which hold no checkerboard (every sub-pixel phase is painted alike);
- ``near-duplicates``: all 64 crops of a set from one window of one photograph, 1.3x the crop size,
  so any two overlap by at least 70 % per axis (what a mode-collapsed generator produces).

Images are mapped into [0.1, 0.9] so an added pattern never clips. For every cell it reports the
coverage (share of sets whose bound is at least the amplitude added) and the median score ÷ truth;
the truth is the amplitude added, so the photographs' own grid energy (JPEG's 8x8 blocks in china
and flower) counts as an error of the score here. The clean sets (no pattern) give the reading and
the bound at amplitude 0. Writes ``leaderboards/calibration.md`` and ``leaderboards/calibration.json``.

With ``--periods`` it calibrates long periods instead: each period ``P`` is added as a random ``P x P``
tile and read on the grid of its own period, at the size ``--sizes`` gives it (one size per period, or
one for all): ``levels = log2 P`` of the metric for a power of two, and
:func:`~lightning_checkerboard.functional.periodic_pattern_reading` for any other period. It writes
``leaderboards/calibration-long.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import math
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard._io import atomic_write_json, atomic_write_text
from lightning_checkerboard.cli import positive_int, run_cli
from lightning_checkerboard.functional import periodic_pattern_reading
from lightning_checkerboard.metrics import CheckerboardScore
from lightning_checkerboard.reporting import provenance

SIZES = (32, 64, 128, 256)
PERIODS = (2, 4, 8)
AMPLITUDES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
KINDS = ("photos", "smooth", "blocks", "near-duplicates")
IMAGES = 64
LEVELS = 3
LOW, HIGH = 0.1, 0.9
#: Crops of a near-duplicate set come from one window this many times the crop size.
WINDOW = 1.3
#: The photographs are rescaled by this factor first (see :func:`calibration_photos`).
RESCALE = 0.75
#: The photographs of :func:`calibration_photos`, in its order.
PHOTO_NAMES = ("camera", "brick", "grass", "gravel", "moon", "coins", "china", "flower")
#: Crops per photograph in the long-period mode's clean reading of each photograph alone.
PHOTO_CROPS = 16


@lru_cache(maxsize=None)
def calibration_photos() -> tuple[np.ndarray, ...]:
    """Photographs no test of the score uses, float64 ``(H, W, 3)`` in [0, 1]."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    from skimage.transform import rescale

    photos = []
    for name in ("camera", "brick", "grass", "gravel", "moon", "coins"):
        grey = getattr(skimage.data, name)() / 255.0
        photos.append(np.repeat(grey[..., None], 3, axis=-1))
    photos.extend(image / 255.0 for image in load_sample_images().images)
    # JPEG's 8x8 blocks (china, flower) and scanning leave a faint grid pattern of the photos' own on
    # exactly the bins measured; a 3/4 rescale moves it to period 32/3 and leaves the added pattern
    # as the only grid pattern, so the truth is known.
    return tuple(np.clip(rescale(p, RESCALE, anti_aliasing=True, channel_axis=-1), 0.0, 1.0) for p in photos)


def _crop(photo: np.ndarray, size: int, top: int, left: int) -> np.ndarray:
    return photo[top : top + size, left : left + size].transpose(2, 0, 1)


def photo_set(size: int, rng: np.random.Generator, duplicates: bool = False) -> torch.Tensor:
    """``IMAGES`` crops in [LOW, HIGH]: independent ones, or all from one window of one photo."""
    photos = [p for p in calibration_photos() if min(p.shape[:2]) >= math.ceil(WINDOW * size)]
    out = np.empty((IMAGES, 3, size, size))
    if duplicates:
        photo = photos[rng.integers(len(photos))]
        span = math.ceil(WINDOW * size)
        top0, left0 = rng.integers(0, photo.shape[0] - span + 1), rng.integers(0, photo.shape[1] - span + 1)
        for i in range(IMAGES):
            dy, dx = rng.integers(0, span - size + 1, size=2)
            out[i] = _crop(photo, size, top0 + dy, left0 + dx)
    else:
        for i in range(IMAGES):
            photo = photos[rng.integers(len(photos))]
            top, left = rng.integers(0, photo.shape[0] - size + 1), rng.integers(0, photo.shape[1] - size + 1)
            out[i] = _crop(photo, size, top, left)
    return torch.from_numpy(LOW + (HIGH - LOW) * out).float()


def _stages(images: torch.Tensor, mode: str) -> torch.Tensor:
    x = F.avg_pool2d(images, 8)
    for _ in range(3):
        x = F.interpolate(x, scale_factor=2, mode=mode, **({} if mode == "nearest" else {"align_corners": False}))
    return x


def image_set(kind: str, size: int, rng: np.random.Generator) -> torch.Tensor:
    """One set of ``IMAGES`` images of ``kind`` (see the module docstring)."""
    if kind == "near-duplicates":
        return photo_set(size, rng, duplicates=True)
    photos = photo_set(size, rng)
    if kind == "smooth":
        return _stages(photos, "bilinear")
    if kind == "blocks":
        return _stages(photos, "nearest")
    return photos


def pattern(period: int, size: int, amplitude: float, rng: np.random.Generator) -> torch.Tensor:
    """A zero-mean pattern of period ``period`` and RMS ``amplitude / 255``, the same in every channel."""
    if period == 2:
        tile = np.array([[1.0, -1.0], [-1.0, 1.0]])
    else:
        tile = rng.standard_normal((period, period))
        tile = (tile - tile.mean()) / tile.std()
        # Keep the pattern inside the head-room [0, LOW] of the images: rescale a rare extreme tile.
        tile *= min(1.0, 3.0 / float(np.abs(tile).max()))
        tile /= tile.std()
    return torch.from_numpy(np.tile(tile, (size // period, size // period)) * amplitude / 255.0).float()


def measure(images: torch.Tensor, grid: int | None = None) -> tuple[float, float]:
    """Score and 95 % upper bound of one set: at ``levels=LEVELS``, or on the grid of period ``grid``."""
    images = images.clamp(0.0, 1.0)
    if grid is not None and grid & (grid - 1):
        result = periodic_pattern_reading(images, grid)
    else:
        metric = CheckerboardScore(levels=LEVELS if grid is None else grid.bit_length() - 1)
        metric.update(images)
        result = metric.diagnostics()
    return float(result["score"]), float(result["upper"])


def calibrate(sets: int, sizes=SIZES, kinds=KINDS, grids=None) -> list[dict[str, object]]:
    """Every cell's coverage and score ÷ truth over ``sets`` sets (amplitude 0: score and bound).

    ``grids``: ``(period, size)`` pairs, each period added alone and read on the grid of its own period
    (rows carry ``grid``); ``None``: every size of ``sizes`` at ``levels=LEVELS`` with periods 2, 4, 8.
    """
    rows = []
    cells = [(size, None, PERIODS) for size in sizes] if grids is None else [(s, p, (p,)) for p, s in grids]
    for kind in kinds:
        for size, grid, periods in cells:
            readings: dict[tuple[int, float], list[tuple[float, float]]] = {}
            for trial in range(sets):
                rng = np.random.default_rng([KINDS.index(kind), size, trial] + ([] if grid is None else [grid]))
                images = image_set(kind, size, rng)
                readings.setdefault((0, 0.0), []).append(measure(images, grid))
                for period in periods:
                    for amplitude in AMPLITUDES:
                        added = images + pattern(period, size, amplitude, rng)
                        readings.setdefault((period, amplitude), []).append(measure(added, grid))
            for (period, amplitude), values in readings.items():
                scores = np.array([s for s, _ in values])
                uppers = np.array([u for _, u in values])
                row = {"kind": kind, "size": size, "period": period, "amplitude": amplitude, "sets": sets,
                       "score_median": float(np.median(scores)), "score_max": float(scores.max()),
                       "upper_median": float(np.median(uppers))}
                if amplitude > 0:
                    row["misses"] = int(np.sum(uppers < amplitude))
                    row["coverage"] = float(np.mean(uppers >= amplitude))
                    row["ratio_median"] = float(np.median(scores / amplitude))
                    row["twice_bound"] = bool(amplitude >= 2 * np.median(readings[(0, 0.0)], axis=0)[1])
                if grid is not None:
                    row["grid"] = grid
                rows.append(row)
            print(f"{kind}, {size} px{'' if grid is None else f', period {grid}'}: done", flush=True)
    return rows


def worst(rows: list[dict[str, object]]) -> dict[str, object]:
    """The cell with the lowest coverage (ties: the lowest score ÷ truth among patterns twice the bound)."""
    cells = [r for r in rows if r["amplitude"] > 0]
    return min(cells, key=lambda r: (r["coverage"], r["ratio_median"] if r["twice_bound"] else math.inf))


def _periods(rows: list[dict[str, object]]) -> list[int]:
    """The pattern periods of the rows, ascending."""
    return sorted({r["period"] for r in rows if r["amplitude"] > 0})


def pooled(rows: list[dict[str, object]]) -> list[str]:
    """Coverage pooled over sizes and amplitudes per kind and period, and the strong patterns read off by
    more than 5 % at 64 px and up: the two promises the bound and the score make."""
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    periods = _periods(rows)
    lines = ["## Coverage by kind and period", "",
             "Sets whose bound fell below the amplitude added, of all patterned sets (every size and amplitude); "
             "a 95 % bound may miss 5 %.", "",
             "| kind | " + " | ".join(f"period {p}" for p in periods) + " |", "|---|" + "---:|" * len(periods)]
    for kind in kinds:
        cells = []
        for period in periods:
            group = [r for r in rows if r["kind"] == kind and r["period"] == period and r["amplitude"] > 0]
            misses, total = sum(r["misses"] for r in group), sum(r["sets"] for r in group)
            cells.append(f"{misses} of {total} ({100 * (1 - misses / total):.1f} % covered)")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    off = [r for r in rows if r["amplitude"] > 0 and r.get("twice_bound") and r["size"] >= 64
           and abs(r["ratio_median"] - 1.0) > 0.05]
    listed = "; ".join(f"{r['kind']} {r['size']} px period {r['period']} at {r['amplitude']:g} levels "
                       f"({r['ratio_median']:.2f})" for r in off)
    lines += ["", "Patterns at least twice the clean bound, at 64 px and up, read more than 5 % off: "
              + (listed or "none") + ".", ""]
    return lines


def photo_readings(grids) -> list[dict[str, object]]:
    """Clean reading of each photograph alone (``PHOTO_CROPS`` seeded crops) at each ``(period, size)``.

    Says which photographs hold content of their own on a long period's bins: the truth of the calibration
    assumes they hold none.
    """
    rows = []
    for name, photo in zip(PHOTO_NAMES, calibration_photos()):
        for period, size in grids:
            if min(photo.shape[:2]) < size:
                continue
            rng = np.random.default_rng([PHOTO_NAMES.index(name), size, period])
            corners = [(rng.integers(0, photo.shape[0] - size + 1), rng.integers(0, photo.shape[1] - size + 1))
                       for _ in range(PHOTO_CROPS)]
            crops = [_crop(photo, size, top, left) for top, left in corners]
            score, upper = measure(torch.from_numpy(LOW + (HIGH - LOW) * np.stack(crops)).float(), period)
            rows.append({"photo": name, "period": period, "size": size, "score": score, "upper": upper})
    return rows


def render_photos(rows: list[dict[str, object]]) -> list[str]:
    """The table of :func:`photo_readings`: score (bound) per photograph and period."""
    grids = list(dict.fromkeys((r["period"], r["size"]) for r in rows))
    lines = ["## Each photograph alone", "",
             f"Score (bound) of {PHOTO_CROPS} crops of one photograph, nothing added: what the photograph's own "
             "content reads on the grid bins (crops of one photograph overlap, so its content repeats over them). "
             "Photographs too small for a size are left out (–); the photo sets above draw on those at least "
             f"{WINDOW}x the size.", "",
             "| photograph | " + " | ".join(f"period {p} at {s} px" for p, s in grids) + " |",
             "|---|" + "---:|" * len(grids)]
    for name in dict.fromkeys(r["photo"] for r in rows):
        cells = []
        for period, size in grids:
            r = next((r for r in rows if (r["photo"], r["period"], r["size"]) == (name, period, size)), None)
            cells.append("–" if r is None else f"{r['score']:.2f} ({r['upper']:.2f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


def _grid_words(rows: list[dict[str, object]]) -> str:
    """How the rows were read: ``levels=3``, or each period on its own grid at its size."""
    grids = dict.fromkeys((r["grid"], r["size"]) for r in rows if "grid" in r)
    if not grids:
        return f"`levels={LEVELS}`"
    words = [f"period {p} at {s} px (" + (f"`levels={p.bit_length() - 1}`" if not p & (p - 1)
                                         else "`periodic_pattern_reading`") + ")" for p, s in grids]
    return ("each pattern read on the grid of its own period, " + ", ".join(words)
            + "; a random tile of that period, new per set, is added")


def render(rows: list[dict[str, object]], meta: dict[str, str], sets: int, photos=None) -> str:
    long = any("grid" in r for r in rows)
    lines = [
        "# Calibration of the checkerboard score" + (" at long periods" if long else ""),
        "",
        f"Generated by `{meta['command']}` on {meta['date']} ({meta['machine']}). Do not edit by hand.",
        "",
        f"{IMAGES} images per set, {sets} sets per cell (a coverage of 1.00 over {sets} sets says only that no "
        f"set missed), {_grid_words(rows)}. Each cell reads **coverage / score ÷ truth**: the share of sets whose "
        "95 % bound is at least the amplitude added, and the median score divided by that amplitude. "
        "Photographs: camera, brick, grass, gravel, moon, coins (scikit-image) and china, flower (scikit-learn), "
        "none used by the tests; *smooth*: the crops down 8x and up by three bilinear x2 stages; *blocks*: down 8x "
        "and up by three nearest x2 stages (equal 8x8 blocks); *near-duplicates*: all crops of a set from one "
        f"window {WINDOW}x the crop size. Amplitudes in 8-bit levels; the clean column gives the median "
        "score and bound with nothing added. ✱ marks a pattern at least twice the clean bound, where the score "
        "should read within 5 %.",
        "",
    ]
    cell = worst(rows)
    lines += [f"Worst cell: {cell['kind']}, {cell['size']} px, period {cell['period']}, {cell['amplitude']:g} levels: "
              f"coverage {cell['coverage']:.2f}, score ÷ truth {cell['ratio_median']:.2f}.", ""]
    lines += pooled(rows)
    if photos:
        lines += render_photos(photos)
    for kind in dict.fromkeys(r["kind"] for r in rows):
        lines += [f"## {kind}", "",
                  "| size | period | clean: score (bound) | " + " | ".join(f"{a:g}" for a in AMPLITUDES) + " |",
                  "|---:|---:|---:|" + "---:|" * len(AMPLITUDES)]
        for size in dict.fromkeys(r["size"] for r in rows if r["kind"] == kind):
            for period in _periods([r for r in rows if r["kind"] == kind and r["size"] == size]):
                clean = next(r for r in rows if r["kind"] == kind and r["size"] == size and r["amplitude"] == 0
                             and r.get("grid", period) == period)
                cells = []
                for amplitude in AMPLITUDES:
                    r = next(r for r in rows if (r["kind"], r["size"], r["period"], r["amplitude"])
                             == (kind, size, period, amplitude))
                    mark = " ✱" if r["twice_bound"] else ""
                    cells.append(f"{r['coverage']:.2f} / {r['ratio_median']:.2f}{mark}")
                lines.append(f"| {size} | {period} | {clean['score_median']:.2f} ({clean['upper_median']:.2f}) | "
                             + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="recipes/reports/calibrate_score.py", description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--sets", type=positive_int, default=4, help="image sets per cell")
    parser.add_argument("--out", type=Path, default=Path("leaderboards"),
                        help="folder for calibration.md/.json (calibration-long.md/.json with --periods)")
    parser.add_argument("--periods", type=positive_int, nargs="+", default=None,
                        help="long-period mode: these periods (>= 2), each read on the grid of its own period")
    parser.add_argument("--sizes", type=positive_int, nargs="+", default=None,
                        help="with --periods: the image size of each period (one per period, or one for all); "
                             "a multiple of the period and at least 4 times it")
    return parser


def grids_of(parser: argparse.ArgumentParser, periods: list[int] | None, sizes: list[int] | None):
    """``(period, size)`` pairs of the long-period mode, or ``None``; a mistake is one line, exit 2."""
    if periods is None:
        if sizes is not None:
            parser.error("--sizes needs --periods (the default calibration uses 32, 64, 128 and 256 px)")
        return None
    if any(p < 2 for p in periods):
        parser.error(f"--periods must be integers >= 2; got {' '.join(map(str, periods))}")
    sizes = sizes or [max(256, 4 * p) for p in periods]
    if len(sizes) not in (1, len(periods)):
        parser.error(f"--sizes takes one size per period ({len(periods)}) or one for all; got {len(sizes)}")
    pairs = list(zip(periods, sizes * len(periods) if len(sizes) == 1 else sizes))
    for period, size in pairs:
        if size % period or size < 4 * period:
            parser.error(f"--sizes: {size} px does not fit period {period} (a multiple of it, at least {4 * period})")
        if size % 8:
            parser.error(f"--sizes: {size} px is not a multiple of 8 (the smooth and block images are built 8x down)")
        largest = int(max(min(p.shape[:2]) for p in calibration_photos()) / WINDOW)
        if size > largest:
            parser.error(f"--sizes: {size} px is larger than the near-duplicate windows allow (at most {largest})")
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    grids = grids_of(parser, args.periods, args.sizes)
    meta = provenance("recipes/reports/calibrate_score.py", argv if argv is not None else sys.argv[1:])
    rows = calibrate(args.sets, grids=grids)
    photos = None if grids is None else photo_readings(grids)
    name = "calibration" if grids is None else "calibration-long"
    how = {"levels": LEVELS} if grids is None else {"grids": [{"period": p, "size": s} for p, s in grids],
                                                    "photos": photos}
    atomic_write_json(args.out / f"{name}.json", {"provenance": meta, **how, "images": IMAGES,
                                                  "sets": args.sets, "worst": worst(rows), "cells": rows})
    atomic_write_text(args.out / f"{name}.md", render(rows, meta, args.sets, photos))
    print(f"wrote {args.out / f'{name}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
