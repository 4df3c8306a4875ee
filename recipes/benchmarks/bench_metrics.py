"""What the metrics cost: checkerboard score vs a DCGAN training step, FID with vs without the real cache.

Usage:
    python recipes/benchmarks/bench_metrics.py --quick              # a few minutes on 2 CPU cores
    python recipes/benchmarks/bench_metrics.py --repeats 9 --fid-images 64 --out leaderboards/bench_metrics.md

Two figures, each the median over interleaved rounds (A then B in every round, so drift and other
load on the machine hit both alike) of the per-round ratio:

1. ``CheckerboardScore(levels=3).update`` on a 64×3×64×64 batch / one forward+backward of a DCGAN-64
   generator+discriminator step at the same batch (goal ≤ 2 %).
2. FID with cached real statistics / FID computing them (goal ≤ 0.55). Both time
   ``use_real_cache`` + updates + ``compute()`` with as many real as generated images; building
   the metric (loading the weights) is the same for both and reported apart. When no official
   Inception weights are found locally, a seeded random stand-in is generated in a temporary
   directory (the timing does not depend on the weights' values) and the output says so.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard.metrics.checkerboard import CheckerboardScore
from lightning_checkerboard.metrics.fid import FID, resolve_inception_weights
from lightning_checkerboard.metrics._inception import write_random_inception_weights
from lightning_checkerboard.models.dcgan import DCGANDiscriminator, DCGANGenerator

CHECKERBOARD_GOAL = 0.02
FID_CACHE_GOAL = 0.55


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_checkerboard(batch: int, rounds: int) -> dict[str, float]:
    """Median ratio of one CheckerboardScore.update to one DCGAN G+D forward+backward."""
    gen, disc = DCGANGenerator("deconv", image_size=64), DCGANDiscriminator(image_size=64)
    loss = nn.BCEWithLogitsLoss()
    z = torch.randn(batch, gen.latent_dim)
    real = torch.rand(batch, 3, 64, 64) * 2 - 1
    ones, zeros = torch.ones(batch), torch.zeros(batch)
    metric = CheckerboardScore(levels=3)
    images = ((gen(z).detach() + 1) / 2).clamp(0, 1)

    def train_step() -> None:
        # The usual GAN step without optimizer.step (which is cheap and not "forward+backward").
        gen.zero_grad(set_to_none=True)
        disc.zero_grad(set_to_none=True)
        fake = gen(z)
        (loss(disc(real), ones) + loss(disc(fake.detach()), zeros)).backward()
        loss(disc(fake), ones).backward()

    def metric_update() -> None:
        metric.update(images)

    train_step(), metric_update()  # warm-up: allocator and kernel selection
    step_times, update_times, ratios = [], [], []
    for _ in range(rounds):
        s, u = _seconds(train_step), _seconds(metric_update)
        step_times.append(s)
        update_times.append(u)
        ratios.append(u / s)
    return {
        "step_s": statistics.median(step_times),
        "update_s": statistics.median(update_times),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
    }


def bench_fid(weights: Path, n_images: int, size: int, rounds: int, workdir: Path) -> dict[str, float]:
    """Median ratio of FID time with cached real statistics to FID time computing them."""
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(n_images, 3, size, size, generator=gen)
    fake = torch.rand(n_images, 3, size, size, generator=gen)
    key = {"resolution": size, "num_samples": n_images}
    cache_dir = workdir / "fid-cache"

    def run(fingerprint: str) -> tuple[float, float, bool]:
        built = time.perf_counter()
        metric = FID(policy="required", weights_path=weights, cache_dir=cache_dir)
        start = time.perf_counter()
        hit = metric.use_real_cache(fingerprint, **key)
        if not hit:
            metric.update(real, real=True)
        metric.update(fake, real=False)
        metric.compute()
        return time.perf_counter() - start, start - built, hit

    run("warm-up")  # first Inception pass pays one-off costs; it also fills the cache for "cached"
    uncached, cached, build, ratios = [], [], [], []
    for r in range(rounds):
        u, b, hit_u = run(f"uncached-{r}")  # a new fingerprint every round: always a miss
        c, _, hit_c = run("warm-up")
        assert not hit_u and hit_c, "benchmark bug: the cache hit/miss pattern is wrong"
        uncached.append(u)
        cached.append(c)
        build.append(b)
        ratios.append(c / u)
    return {
        "uncached_s": statistics.median(uncached),
        "cached_s": statistics.median(cached),
        "build_s": statistics.median(build),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
    }


def _markdown(rows: list[tuple[str, str, str, str]], notes: list[str]) -> str:
    lines = [
        "# Metric cost",
        "",
        "Generated by `python recipes/benchmarks/bench_metrics.py` (see its docstring); do not edit by hand.",
        "",
        "| measurement | value | goal | met |",
        "| --- | --- | --- | --- |",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
        "",
        *(f"- {n}" for n in notes),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and images (a few minutes on 2 cores)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 7, quick 3)")
    parser.add_argument("--batch", type=int, default=64, help="batch of the checkerboard benchmark (default 64)")
    parser.add_argument("--fid-images", type=int, default=None, help="real and generated images (default 32, quick 16)")
    parser.add_argument("--fid-size", type=int, default=64, help="image size fed to FID (default 64)")
    parser.add_argument("--fid-weights", type=Path, default=None, help="Inception weights (default: torch hub cache)")
    parser.add_argument("--out", type=Path, default=Path("leaderboards/bench_metrics.md"))
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    n_images = args.fid_images or (16 if args.quick else 32)
    for name, value, low in (("--repeats", repeats, 1), ("--batch", args.batch, 1), ("--fid-images", n_images, 2)):
        if value < low:
            print(f"error: {name} must be >= {low}, got {value}", file=sys.stderr)
            return 2

    torch.manual_seed(0)
    notes = [
        f"machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, Python {platform.python_version()}",
        f"date: {dt.date.today().isoformat()}; {repeats} interleaved rounds, medians of per-round ratios",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        workdir = Path(tmp)
        try:
            weights = resolve_inception_weights(args.fid_weights, download=False)
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if weights is None:
            weights = write_random_inception_weights(workdir / "inception-random.pth")
            notes.append(
                "FID used a locally generated random Inception-v3 state dict (no official weights found); "
                "times do not depend on the weights' values"
            )
        else:
            notes.append(f"FID weights: {weights}")

        print(f"checkerboard: {repeats} rounds at batch {args.batch} ...", flush=True)
        cb = bench_checkerboard(args.batch, repeats)
        print(f"FID: {repeats} rounds with {n_images}+{n_images} images at {args.fid_size}px ...", flush=True)
        fid = bench_fid(weights, n_images, args.fid_size, repeats, workdir)

    rows = [
        (
            f"CheckerboardScore.update / DCGAN-64 G+D fwd+bwd, batch {args.batch}",
            f"{cb['ratio']:.2%} ({cb['update_s'] * 1e3:.1f} ms / {cb['step_s'] * 1e3:.0f} ms)",
            f"≤ {CHECKERBOARD_GOAL:.0%}",
            "yes" if cb["ratio"] <= CHECKERBOARD_GOAL else "no",
        ),
        (
            f"FID cached / uncached real statistics, {n_images}+{n_images} images",
            f"{fid['ratio']:.2f}× ({fid['cached_s']:.1f} s / {fid['uncached_s']:.1f} s)",
            f"≤ {FID_CACHE_GOAL}×",
            "yes" if fid["ratio"] <= FID_CACHE_GOAL else "no",
        ),
    ]
    notes.append("per-round ratios: checkerboard " + ", ".join(f"{r:.2%}" for r in cb["ratios"])
                 + "; FID " + ", ".join(f"{r:.2f}" for r in fid["ratios"]))
    notes.append(f"building the FID metric (loading weights), excluded from both FID times: {fid['build_s']:.1f} s")
    width = max(len(r[0]) for r in rows)
    for name, value, goal, met in rows:
        print(f"{name:<{width}}  {value:<28} goal {goal:<6} met: {met}")
    for note in notes:
        print(f"  {note}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(_markdown(rows, notes), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
