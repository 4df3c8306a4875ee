"""How small a checkerboard the score can see, and what "0.00" rules out, by image size and sample count.

    python recipes/reports/detection_limits.py            # a few minutes on a 2-core CPU
    python recipes/reports/detection_limits.py --trials 20

Photographs the score's tests never use (scikit-image's greyscale camera, brick, grass, gravel, moon
and coins, scikit-learn's china and flower; greyscale repeated over three channels; the package's own
``photos``, which the tests do use, are left out), cut into seeded random crops mapped into [0.05, 0.95] so a pattern adds without clipping.
For every size (32, 64, 128 px) and sample count (64, 256, 1024) it reports, over ``--trials`` crop
sets:

- the median 95 % upper bound on clean crops: what a score of 0.00 rules out at that protocol;
- the smallest RMS amplitude of an added period-2 checkerboard, and of a random period-4 tile, that
  the score detects (reads above 0) in at least 95 % of the trials: the detection limit;
- the coverage of the bound: the share of all patterned trials whose bound is at least the amplitude
  really added.

Writes ``leaderboards/detection_limits.md`` and ``leaderboards/detection_limits.json``.
"""

from __future__ import annotations

import argparse
import math
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard._io import atomic_write_json, atomic_write_text
from lightning_checkerboard.cli import positive_int, run_cli
from lightning_checkerboard.metrics import CheckerboardScore
from lightning_checkerboard.reporting import provenance

SIZES = (32, 64, 128)
COUNTS = (64, 256, 1024)
#: Amplitudes tried, in 8-bit levels; the detection limit is the first one detected often enough.
AMPLITUDES = (0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0)
LEVELS = 3


@lru_cache(maxsize=None)
def unseen_photos() -> tuple[np.ndarray, ...]:
    """Photos outside the package's ``photos`` data and the metric tests, float64 ``(H, W, 3)`` in [0, 1]."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = []
    for name in ("camera", "brick", "grass", "gravel", "moon", "coins"):
        grey = getattr(skimage.data, name)() / 255.0
        photos.append(np.repeat(grey[..., None], 3, axis=-1))
    photos.extend(image / 255.0 for image in load_sample_images().images)
    return tuple(photos)


def crops(count: int, size: int, seed: int) -> torch.Tensor:
    """``count`` random crops of :func:`unseen_photos`, float32 ``(count, 3, size, size)`` in [0.05, 0.95]."""
    rng = np.random.default_rng(seed)
    photos = unseen_photos()
    out = np.empty((count, 3, size, size))
    for i in range(count):
        photo = photos[rng.integers(len(photos))]
        top, left = rng.integers(0, photo.shape[0] - size + 1), rng.integers(0, photo.shape[1] - size + 1)
        out[i] = photo[top : top + size, left : left + size].transpose(2, 0, 1)
    return torch.from_numpy(0.05 + 0.9 * out).float()


def pattern(period: int, size: int, amplitude: float, seed: int) -> torch.Tensor:
    """A zero-mean pattern of period ``period`` and RMS ``amplitude / 255``: the checkerboard for period 2."""
    if period == 2:
        tile = np.array([[1.0, -1.0], [-1.0, 1.0]])
    else:
        tile = np.random.default_rng(seed).standard_normal((period, period))
        tile = (tile - tile.mean()) / tile.std()
    return torch.from_numpy(np.tile(tile, (size // period, size // period)) * amplitude / 255.0).float()


def measure(images: torch.Tensor) -> tuple[float, float]:
    metric = CheckerboardScore(levels=LEVELS)
    metric.update(images)
    result = metric.diagnostics()
    return float(result["score"]), float(result["upper"])


def probe(size: int, count: int, trials: int) -> dict[str, object]:
    clean_bounds, covered, total = [], 0, 0
    limits: dict[str, float | None] = {}
    detected = {period: {a: 0 for a in AMPLITUDES} for period in (2, 4)}
    for trial in range(trials):
        photos = crops(count, size, seed=1000 * size + trial)
        clean_bounds.append(measure(photos)[1])
        for period in (2, 4):
            for amplitude in AMPLITUDES:
                score, upper = measure(photos + pattern(period, size, amplitude, seed=trial))
                detected[period][amplitude] += score > 0.0
                covered += upper >= amplitude
                total += 1
    for period in (2, 4):
        hits = [a for a in AMPLITUDES if detected[period][a] >= math.ceil(0.95 * trials)]
        limits[f"period_{period}"] = min(hits) if hits else None
    return {"size": size, "count": count, "trials": trials, "clean_bound_median": float(np.median(clean_bounds)),
            "clean_bound_max": float(np.max(clean_bounds)), "detection_limit": limits,
            "bound_coverage": covered / total}


def _limit(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else f"> {AMPLITUDES[-1]:.1f}"


def render(results: list[dict[str, object]], meta: dict[str, str], trials: int) -> str:
    lines = [
        "# Detection limits of the checkerboard score",
        "",
        f"Generated by `{meta['command']}` on {meta['date']} ({meta['machine']}). Do not edit by hand.",
        "",
        f"Crops of photographs the score was never tuned on (see the recipe's docstring), {trials} crop sets per "
        f"cell, `levels={LEVELS}`. **Bound**: median (max) of the 95 % upper bound on clean crops — what a "
        "score of 0.00 rules out. **Detected from**: the smallest RMS amplitude, in 8-bit levels, that reads "
        "above 0 in at least 95 % of the sets, for a period-2 checkerboard and a random period-4 tile (tried: "
        + ", ".join(f"{a:g}" for a in AMPLITUDES) + "). **Coverage**: share of patterned sets whose bound is "
        "at least the amplitude added.",
        "",
        "| size | images | bound on clean crops | period 2 detected from | period 4 detected from | coverage |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        limits = r["detection_limit"]
        lines.append(f"| {r['size']} | {r['count']} | {r['clean_bound_median']:.2f} ({r['clean_bound_max']:.2f}) | "
                     f"{_limit(limits['period_2'])} | {_limit(limits['period_4'])} | {r['bound_coverage']:.3f} |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="recipes/reports/detection_limits.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--trials", type=positive_int, default=10, help="crop sets per size and count")
    parser.add_argument("--out", type=Path, default=Path("leaderboards"), help="folder for detection_limits.md/.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    meta = provenance("recipes/reports/detection_limits.py", argv if argv is not None else sys.argv[1:])
    results = []
    for size in SIZES:
        for count in COUNTS:
            results.append(probe(size, count, args.trials))
            print(f"{size} px, {count} images: bound {results[-1]['clean_bound_median']:.2f}, detected from "
                  f"{results[-1]['detection_limit']}", flush=True)
    atomic_write_json(args.out / "detection_limits.json", {"provenance": meta, "levels": LEVELS, "results": results})
    atomic_write_text(args.out / "detection_limits.md", render(results, meta, args.trials))
    print(f"wrote {args.out / 'detection_limits.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
