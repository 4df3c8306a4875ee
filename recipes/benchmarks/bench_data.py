"""How fast ``folder:`` data is ready: the first decode, the data cache, and the loader against training.

Usage:
    python recipes/benchmarks/bench_data.py                      # about 2-4 minutes on 2 CPU cores
    python recipes/benchmarks/bench_data.py --work-dir /tmp/lcb-bench-data --out leaderboards/bench_data.md

Generates two image folders (kept in ``--work-dir`` for reruns, else in a temporary folder that is
removed at the end): 20 000 PNGs of 32×32 pixels, served at 32², and 5 000 JPEGs of 256×256,
served at 64². For each it measures

1. the first ``ImageDataModule.setup()`` (list, decode, resize, write the data cache) with one
   decoder against one per core (goal: parallel ≤ 0.6× single);
2. the decode alone with worker processes and with worker threads, to show which pool is faster;
3. the second ``setup()``, from the data cache (goal: ≤ 1 s for the 20 000 images; imports excluded);

then, on the 64² folder, the training loader's steady-state throughput (batches of 64 from the cache,
and decoded on demand with ``data_cache=False, streaming=True``) against what a DCGAN-64
``GANTask`` training iteration consumes (batch 64, inside ``Trainer.fit``; goal: the cached loader
is never the bottleneck, i.e. serves images faster than training uses them).
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard._lightning import NAMESPACE, pl
import torch
from PIL import Image

from lightning_checkerboard._io import atomic_write_text
from lightning_checkerboard.cli import positive_int, run_cli
from lightning_checkerboard.data import ImageDataModule
from lightning_checkerboard.data.decode import available_workers, decode_into
from lightning_checkerboard.data.folder import folder_images
from lightning_checkerboard.reporting import provenance
from lightning_checkerboard.tasks import GANTask

SECOND_SETUP_GOAL_S = 1.0
PARALLEL_GOAL = 0.6


def generate_folder(folder: Path, count: int, side: int, suffix: str) -> Path:
    """``count`` seeded images of ``side`` pixels: smooth colour fields plus grain, compressible like photos."""
    marker = folder / f".complete-{count}"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        coarse = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
        field = coarse.resize((side, side), Image.Resampling.BICUBIC)
        pixels = np.asarray(field, dtype=np.int16) + rng.integers(-12, 13, (side, side, 3), dtype=np.int16)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.{suffix}", quality=90)
    marker.touch()
    return folder


def timed_setup(folder: Path, size: int, cache: Path, **options) -> tuple[float, ImageDataModule]:
    dm = ImageDataModule(f"folder:{folder}", image_size=size, batch_size=64, cache_dir=cache, **options)
    start = time.perf_counter()
    dm.setup("fit")
    return time.perf_counter() - start, dm


def bench_folder(folder: Path, size: int, scratch: Path, rounds: int) -> dict:
    """First setup with 1 decoder and with all, the decode with each pool, and the second setup."""
    workers = available_workers()
    single, parallel, second = [], [], []
    for r in range(rounds):
        single.append(timed_setup(folder, size, scratch / f"single-{r}", decode_workers=1)[0])
        parallel.append(timed_setup(folder, size, scratch / f"parallel-{r}")[0])
        second.extend(timed_setup(folder, size, scratch / f"parallel-{r}")[0] for _ in range(3))
    source = folder_images(folder, folder.name)
    out = np.zeros((len(source), 3, size, size), dtype=np.uint8)
    pools = {}
    for name, kwargs in (("one worker", {"workers": 1}), ("processes", {"pool": "process"}),
                         ("threads", {"pool": "thread"})):
        start = time.perf_counter()
        decode_into(source, np.arange(len(source)), size, out, **kwargs)
        pools[name] = time.perf_counter() - start
    return {"images": len(source), "workers": workers, "single": statistics.median(single),
            "parallel": statistics.median(parallel), "second": statistics.median(second), "pools": pools}


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def core_capacity(workers: int, n: int = 10_000_000) -> float:
    """How many one-core shares of pure-Python work ``workers`` processes finish in the time of one:
    the ceiling of any parallel speed-up on this machine (below ``workers`` when cores are shared)."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(_spin, [1000] * workers)  # started and warm
        start = time.perf_counter()
        _spin(n)
        one = time.perf_counter() - start
        start = time.perf_counter()
        pool.map(_spin, [n] * workers)
        return workers * one / (time.perf_counter() - start)


def loader_rate(dm: ImageDataModule, batches: int) -> float:
    """Images per second the training loader delivers, after one warm-up batch."""
    loader = iter(dm.train_dataloader())
    next(loader)
    start = time.perf_counter()
    for _ in range(batches):
        next(loader)
    return batches * dm.batch_size / (time.perf_counter() - start)


class _IterationStarts(pl.Callback):
    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.starts.append(time.perf_counter())


def training_rate(dm: ImageDataModule, steps: int) -> float:
    """Images per second a DCGAN-64 ``GANTask`` consumes, from the median time between iterations."""
    torch.manual_seed(0)
    task = GANTask("nearest_conv", image_size=64, channels=dm.channels)
    timer = _IterationStarts()
    trainer = pl.Trainer(max_steps=(steps + 2) * task.optimizer_steps_per_iteration, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[timer], accelerator="cpu", devices=1, use_distributed_sampler=False)
    trainer.fit(task, datamodule=dm)
    gaps = np.diff(timer.starts)[1:]  # the first iteration pays for lazy initialisation
    return dm.batch_size / float(np.median(gaps))


def report(png: dict, jpeg: dict, cached: float, streamed: float, training: float, load: float,
           capacity: tuple[float, float], argv) -> str:
    info = provenance("recipes/benchmarks/bench_data.py", argv)

    def met(ok: bool) -> str:
        return "yes" if ok else "no"

    rows = []
    for label, result in ((f"{png['images']} PNG 32² → 32²", png), (f"{jpeg['images']} JPEG 256² → 64²", jpeg)):
        ratio = result["parallel"] / result["single"]
        pools = result["pools"]
        rows += [
            f"| {label}: first setup, {result['workers']} decoders / 1 | {ratio:.2f}× ({result['parallel']:.2f} s / "
            f"{result['single']:.2f} s) | ≤ {PARALLEL_GOAL} | {met(ratio <= PARALLEL_GOAL)} |",
            f"| {label}: decode alone with processes / threads / 1 worker | {pools['processes']:.2f} s / "
            f"{pools['threads']:.2f} s / {pools['one worker']:.2f} s "
            f"({pools['processes'] / pools['one worker']:.2f}× / "
            f"{pools['threads'] / pools['one worker']:.2f}×) | | |",
            f"| {label}: second setup, from the cache | {result['second']:.2f} s | "
            + (f"≤ {SECOND_SETUP_GOAL_S:g} s | {met(result['second'] <= SECOND_SETUP_GOAL_S)} |"
               if result is png else "| |"),
        ]
    rows += [
        f"| loader from the cache, 64², batch 64 / DCGAN-64 training iteration | {cached:.0f} / {training:.1f} "
        f"images/s = {cached / training:.0f}× | ≥ 1× | {met(cached >= training)} |",
        f"| loader decoding on demand (`data_cache=False, streaming=True`), 64² / training | {streamed:.0f} / "
        f"{training:.1f} images/s = {streamed / training:.1f}× | | |",
    ]
    return "\n".join([
        "# Data loading",
        "",
        f"Generated by `{info['command']}`; do not edit by hand.",
        "",
        "| measurement | value | goal | met |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
        f"- machine: {info['machine']}; {available_workers()} cores available to this process; "
        f"load average {load:.1f} when the benchmark started",
        f"- the {available_workers()} cores together do {capacity[0]:.2f}× (at the start) and {capacity[1]:.2f}× (at "
        "the end) the pure-Python work of one (processes of busy loops): the ceiling of any parallel speed-up here, "
        f"i.e. a ratio of {1 / max(capacity):.2f}× at best",
        f"- date: {info['date']}; setup times are medians over rounds (the second setup over three per round)",
        "- first setup: list the folder, decode and resize every image, write the memory-mapped data cache;",
        "  second setup: list the folder (its fingerprint), check the cache and map it",
        "",
    ])


def _result_flags(argv: list[str]) -> list[str]:
    """The flags that change the figures, for the command printed in the report: no local paths."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--work-dir", "--out"):
            skip = True
        elif not arg.startswith(("--work-dir=", "--out=")):
            kept.append(arg)
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, help="keep the generated folders here (default: a temporary folder)")
    parser.add_argument("--png-count", type=positive_int, default=20_000)
    parser.add_argument("--jpeg-count", type=positive_int, default=5_000)
    parser.add_argument("--rounds", type=positive_int, default=3, help="first-setup rounds per folder; the median is reported (default 3)")
    parser.add_argument("--steps", type=positive_int, default=6, help="timed GANTask iterations (default 6)")
    parser.add_argument("--out", type=Path, default=Path("leaderboards/bench_data.md"))
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    warnings.filterwarnings("ignore", module=NAMESPACE)
    logging.getLogger(NAMESPACE).setLevel(logging.ERROR)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="lcb-bench-data-"))
    scratch = Path(tempfile.mkdtemp(prefix="lcb-bench-caches-"))
    try:
        capacity = core_capacity(available_workers())
        png_folder = generate_folder(work / "png32", args.png_count, 32, "png")
        jpeg_folder = generate_folder(work / "jpeg256", args.jpeg_count, 256, "jpg")
        png = bench_folder(png_folder, 32, scratch / "png", args.rounds)
        jpeg = bench_folder(jpeg_folder, 64, scratch / "jpeg", args.rounds)
        _, cached_dm = timed_setup(jpeg_folder, 64, scratch / "jpeg" / "parallel-0")
        cached = loader_rate(cached_dm, 200)
        _, streamed_dm = timed_setup(jpeg_folder, 64, scratch / "unused", data_cache=False, streaming=True)
        streamed = loader_rate(streamed_dm, 10)
        training = training_rate(cached_dm, args.steps)
        capacity = (capacity, core_capacity(available_workers()))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    flags = _result_flags(argv if argv is not None else sys.argv[1:])
    text = report(png, jpeg, cached, streamed, training, load, capacity, flags)
    print("\n" + text)
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
