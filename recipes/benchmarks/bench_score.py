"""Time ``python -m lightning_checkerboard.score`` on folders of 64² and 256² PNGs; print images/s.

    python recipes/benchmarks/bench_score.py [--count 512] [--sizes 64 256] [--repeats 3] [--device cpu]

Writes ``--count`` PNGs per size into a temporary folder (seeded smooth random colour fields with a
little noise, compressed like ordinary photographs' PNGs), then runs the command as a user would,
in a fresh process each time, ``--repeats`` times per size, and prints the median wall time and
images per second of the whole command (start-up, decoding and scoring) and the command's own
scoring rate from its JSON report (``images_per_second``: reading, decoding and scoring, without
Python's start-up). No reference, no figures: the checkerboard score alone. Nothing is written
outside the temporary folder, which is removed at the end.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lightning_checkerboard._argparse import OneLineParser


def write_folder(folder: Path, count: int, size: int, seed: int = 0) -> None:
    """``count`` RGB PNGs of ``size x size``: smooth colour fields plus mild noise."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    coarse = max(2, size // 16)
    for i in range(count):
        field = rng.uniform(30, 220, (coarse, coarse, 3))
        smooth = np.asarray(Image.fromarray(field.astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC))
        noisy = smooth.astype(np.float64) + rng.normal(0, 3, smooth.shape)
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.png")


def time_command(folder: Path, report: Path, device: str) -> tuple[float, float]:
    """Run the command once; returns (wall seconds, the report's images_per_second)."""
    command = [sys.executable, "-m", "lightning_checkerboard.score", str(folder), "--json", str(report),
               "--device", device]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    return wall, json.loads(report.read_text())["images_per_second"]


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=512, help="PNGs per size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lcb-bench-score-") as tmp:
        for size in args.sizes:
            folder = Path(tmp, f"{size}px")
            write_folder(folder, args.count, size)
            runs = [time_command(folder, Path(tmp, "report.json"), args.device) for _ in range(args.repeats)]
            wall = statistics.median(r[0] for r in runs)
            rate = statistics.median(r[1] for r in runs)
            print(f"{size}x{size}: {args.count} PNGs, command {wall:.1f} s ({args.count / wall:.0f} images/s "
                  f"with start-up), scoring {rate:.0f} images/s (median of {args.repeats}, device {args.device})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
