"""Run every registered upsampler × seeds through a task's recipe, then build the leaderboard.

    python recipes/run_grid.py                              # the committed GAN leaderboard budget
    python recipes/run_grid.py --runs /tmp/lcb-grid --seeds 0 1 2 --out leaderboards
    python recipes/run_grid.py --task style_transfer --upsamplers deconv nearest_conv
    python recipes/run_grid.py --task super_resolution --runs /tmp/lcb-sr --jobs 2 --no-build

The GAN budget is sized for a 2-core CPU: 32×32 ``photos`` (embedded, no network), batch 32,
generator and discriminator width 16, 400 iterations, artifacts measured once at the end on 128
samples, FID off. The style-transfer, super-resolution and autoencoder budgets are their recipes' default runs.
Runs go ``--jobs`` at a time (default one after the other), each in its own process with one
compute thread (``OMP_NUM_THREADS=1``: on a CPU shared with other work, torch's default of one
thread per core made steps about nine times slower), so a crash in one does not stop the rest; its
record says ``failed`` and the leaderboard lists it apart. A combination that already has a finished record under ``--runs`` is not run
again, so an interrupted grid continues where it stopped (a finished record counts whatever flags
it ran with: give each budget its own ``--runs`` folder). Extra arguments after ``--`` go to every
run. For many machines, use the W&B sweep in ``recipes/sweep.yaml`` instead.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard.cli import HelpFormatter, UsageError, non_negative_int, positive_int, run_cli
from lightning_checkerboard.loggers import LOGGERS
from lightning_checkerboard.records import RECORD_FILENAME, RecordError, read_record
from lightning_checkerboard.upsamplers import list_upsamplers

RECIPES = Path(__file__).resolve().parent

#: The budget of the committed leaderboards, per task: recipe flags shared by every run.
BUDGETS = {
    "gan": (
        "--dataset", "photos", "--image-size", "32", "--batch-size", "32",
        "--gen-channels", "16", "--disc-channels", "16", "--max-steps", "400",
        "--eval-every", "0", "--eval-samples", "128", "--fid", "off",
    ),
    "style_transfer": (),  # the recipe's default run
    "super_resolution": (),  # the recipe's default run
    "autoencoder": (),  # the recipe's default run (about 50 s with one thread, two at a time on 2 cores)
}
#: The lines of a run's output that the grid repeats: its status and its scores line.
_SUMMARY_PREFIXES = ("status:", "checkerboard score", "PSNR")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="recipes/run_grid.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--task", choices=tuple(BUDGETS), default="gan", help="recipes/<task>.py runs the grid")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="where the run directories go")
    parser.add_argument("--out", type=Path, default=Path("leaderboards"), help="where the leaderboard goes")
    parser.add_argument("--upsamplers", nargs="+", default=None, metavar="NAME",
                        help="registered upsamplers to run (default: all of them)")
    parser.add_argument("--seeds", nargs="+", type=non_negative_int, default=[0, 1, 2], help="seeds of every upsampler")
    parser.add_argument("--logger", choices=LOGGERS, default="none", help="logger of every run (the recipe's --logger)")
    parser.add_argument("--jobs", type=positive_int, default=1, help="runs at a time, each with one compute thread")
    parser.add_argument("--no-build", action="store_true", help="only run; do not build the leaderboard")
    parser.add_argument("recipe_args", nargs="*", help="after --: extra recipe flags for every run")
    return parser


def _finished(runs: Path, upsampler: str, seed: int, task: str = "gan") -> Path | None:
    """A run directory under ``runs`` with a finished record of ``task`` for this upsampler and seed."""
    for path in sorted(runs.glob(f"{task}/*/{upsampler}/seed{seed}-*/{RECORD_FILENAME}")):
        try:
            record = read_record(path)
        except RecordError:
            continue
        if record.status == "finished" and record.upsampler == upsampler and record.seed == seed and record.task == task:
            return path.parent
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    registered = list_upsamplers()
    upsamplers = args.upsamplers or registered
    unknown = [name for name in upsamplers if name not in registered]
    if unknown:
        raise UsageError(f"--upsamplers must be registered names ({', '.join(registered)}); got {', '.join(unknown)}")
    grid = [(name, seed) for name in upsamplers for seed in args.seeds]
    started = time.perf_counter()
    todo = []
    for index, (name, seed) in enumerate(grid, 1):
        done = _finished(args.runs, name, seed, args.task)
        if done is not None:
            print(f"[{index}/{len(grid)}] {name} seed {seed}: already finished in {done}", flush=True)
        else:
            todo.append((index, name, seed))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}

    def run(name: str, seed: int) -> tuple[subprocess.CompletedProcess, float]:
        command = [sys.executable, str(RECIPES / f"{args.task}.py"), "--upsampler", name, "--seed", str(seed),
                   *BUDGETS[args.task], "--logger", args.logger, "--output-dir", str(args.runs), *args.recipe_args]
        run_start = time.perf_counter()
        return subprocess.run(command, capture_output=True, text=True, env=env), time.perf_counter() - run_start

    failures = 0
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run, name, seed): (index, name, seed) for index, name, seed in todo}
        for future in as_completed(futures):
            index, name, seed = futures[future]
            result, seconds = future.result()
            if result.returncode == 2:  # a usage error repeats for every run: stop at the first
                pool.shutdown(cancel_futures=True)
                raise UsageError(f"recipes/{args.task}.py refused the flags: {result.stderr.strip().splitlines()[-1]}")
            summary = [line for line in result.stdout.splitlines() if line.startswith(_SUMMARY_PREFIXES)]
            print(f"[{index}/{len(grid)}] {name} seed {seed}: {seconds:.0f} s, exit {result.returncode}: "
                  f"{' | '.join(summary)}", flush=True)
            if result.returncode != 0:
                failures += 1
                print("    " + "\n    ".join(result.stderr.strip().splitlines()[-5:]), flush=True)
    print(f"grid: {len(grid)} runs, {failures} not finished, {time.perf_counter() - started:.0f} s", flush=True)
    if not args.no_build:
        from lightning_checkerboard.leaderboard import build

        written = build([str(args.runs)], args.out, regenerate=shlex.join(
            ["python", "recipes/run_grid.py", "--runs", str(args.runs), "--out", str(args.out)]))
        print(f"leaderboard: {len(written)} files in {args.out}", flush=True)
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(run_cli(main))
