"""Checkerboards in gradients: a discriminator's input gradient on real photos, by first layer.

    python recipes/reports/gradient_probe.py            # 504 s measured (one thread, one core of a shared 2-core CPU)
    python recipes/reports/gradient_probe.py --train-seeds 1 --steps 50      # a quick look, about a minute
    python recipes/reports/gradient_probe.py --train-seeds 5 --steps 600     # more GAN runs, longer

The article's last section: the backward pass of a strided convolution is a transposed convolution,
so a strided first layer can paint a checkerboard into the gradient the generator learns from. Three
first layers (:data:`~lightning_checkerboard.experiments.GRADIENT_CONFIGS`): the DCGAN default 4×4,
stride 2 (even overlap in the backward pass), 3×3, stride 2 (uneven overlap: 1, 2 or 4 taps reach a
pixel depending on its phase, the article's mechanism) and 3×3, stride 1. For each, the gradient of
the discriminator's logits with respect to held-out ``photos`` crops is scored by
:class:`~lightning_checkerboard.metrics.GradientCheckerboardScore` (the share of the scored map's RMS
in grid patterns, 0 to 1) twice: the signed gradient, and its per-pixel energy
(:func:`~lightning_checkerboard.functional.gradient_energy`: uneven overlap with random-sign incoming
gradients makes a pattern in the gradient's variance, which a spectral score of the signed gradient
cannot see), plus the max/min mean energy over the 2×2 pixel phases. Measured for untrained
discriminators over several seeds and for the discriminators of short GAN runs
(:class:`~lightning_checkerboard.tasks.GANTask` in a Lightning ``Trainer``, generator all
``nearest_conv`` so the generator adds no checkerboard of its own). Writes ``leaderboards/gradients.md``
and ``leaderboards/gradients.json``; ``recipes/reports/article_report.py`` reads the latter's ``"2"`` (4×4,
stride 2) and ``"1"`` entries, signed score.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard._lightning import NAMESPACE, pl

from lightning_checkerboard._io import atomic_write_json, atomic_write_text
from lightning_checkerboard.cli import UsageError, positive_int, run_cli
from lightning_checkerboard.data import ImageDataModule
from lightning_checkerboard.experiments import GRADIENT_CONFIGS, gradient_probe_diagnostics, untrained_discriminator
from lightning_checkerboard.models import DCGANDiscriminator, num_stages_for
from lightning_checkerboard.reporting import far_above, format_mean_std, provenance, summarize, summary_cells
from lightning_checkerboard.tasks import GANTask

GENERATOR = "nearest_conv"
#: "Far above": every seed more than this many times every seed of the other side (the article
#: report's predicate, :func:`~lightning_checkerboard.reporting.far_above`).
FAR = 10.0
#: Labels of :data:`GRADIENT_CONFIGS` in the report.
LABELS = {"2": "4×4, stride 2 (DCGAN)", "2k3": "3×3, stride 2", "1": "3×3, stride 1"}
QUANTITIES = {"gradient": ("signed gradient", ""), "energy": ("gradient energy", "energy_")}
#: The comparisons the report draws: (strided config, quantity); each against stride 1.
COMPARISONS = (("2", "gradient"), ("2", "energy"), ("2k3", "gradient"), ("2k3", "energy"))
PHASES = ("untrained", "trained")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="recipes/reports/gradient_probe.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--image-size", type=positive_int, default=32, help="8 … 256, a power of two")
    parser.add_argument("--heldout", type=positive_int, default=256, help="held-out photo crops scored")
    parser.add_argument("--seeds", type=positive_int, default=10, help="untrained discriminators per first layer")
    parser.add_argument("--train-seeds", type=positive_int, default=3, help="GAN runs per first layer")
    parser.add_argument("--steps", type=positive_int, default=300, help="iterations of each GAN run")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--channels", type=positive_int, default=32, help="generator and discriminator width")
    parser.add_argument("--out", type=Path, default=Path("leaderboards"), help="folder for gradients.md/.json")
    return parser


def train_discriminator(datamodule: ImageDataModule, *, first_stride: int, first_kernel: int, seed: int,
                        steps: int, channels: int) -> GANTask:
    """A short GAN run; returns the task, whose discriminator is then probed.

    :class:`GANTask` builds its discriminator with the default kernel for ``first_stride``; it is
    replaced here, before the ``Trainer`` makes the optimizers, by one with ``first_kernel``
    (for every configuration, so all of them draw their weights the same way).
    """
    pl.seed_everything(seed, workers=True, verbose=False)
    task = GANTask(GENERATOR, image_size=datamodule.image_size, gen_channels=channels, disc_channels=channels,
                   disc_first_stride=first_stride)
    task.discriminator = DCGANDiscriminator(image_size=datamodule.image_size, base_channels=channels,
                                            first_stride=first_stride, first_kernel=first_kernel)
    trainer = pl.Trainer(
        max_steps=steps * GANTask.optimizer_steps_per_iteration,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    trainer.fit(task, datamodule=datamodule)
    if task.diverged:
        raise RuntimeError(f"GAN run (first layer {first_kernel}×{first_kernel}, stride {first_stride}, "
                           f"seed {seed}) diverged: {task.diverged}")
    return task


def _seedwise_factor(high: list[float], low: list[float], floor: float = 1e-3) -> float:
    """The largest factor for which :func:`far_above` holds: min(high) / max(low), floored like it."""
    return min(high) / max(max(low), floor)


def comparisons(results: dict) -> list[dict]:
    """Each strided first layer against stride 1, per quantity and phase, by the report's predicate."""
    rows = []
    for phase in PHASES:
        entries = results[phase]
        for key, quantity in COMPARISONS:
            name = QUANTITIES[quantity][1] + "score"
            high = [run[name] for run in entries[key]["runs"]]
            low = [run[name] for run in entries["1"]["runs"]]
            mean_low = statistics.fmean(low)
            rows.append({
                "phase": phase, "config": key, "quantity": quantity,
                "high": entries[key]["summary"][name], "low": entries["1"]["summary"][name],
                "mean_ratio": statistics.fmean(high) / max(mean_low, 1e-3),
                "seedwise_factor": _seedwise_factor(high, low),
                "far_above": far_above(high, low, FAR),
            })
    return rows


def _prefixed(summary: dict, prefix: str) -> dict:
    return {key[len(prefix):]: value for key, value in summary.items() if key.startswith(prefix)
            and (prefix or not key.startswith("energy_"))}


def _markdown(results: dict, command: str) -> str:
    periods = results["periods"]
    lines = [
        "# Checkerboards in gradients: the discriminator's first layer",
        "",
        "Generated by `" + command + "`; do not edit by hand.",
        "",
        f"Gradient of a DCGAN discriminator's summed logits with respect to {results['heldout']} held-out "
        f"`photos` crops at {results['image_size']}², scored by `GradientCheckerboardScore(levels="
        f"{len(periods)})`: the RMS of the grid pattern as a share of the scored map's RMS (0 none, 1 a pure "
        "checkerboard), mean ± std over seeds, with the share at each period. Two maps are scored: the "
        "signed gradient, and its energy (squares summed over colour channels). A first layer with uneven "
        "overlap (3×3, stride 2) sends 1, 2 or 4 kernel taps into a pixel by its phase on the stride grid; "
        "with incoming gradients of varying sign the taps add incoherently, so the pattern is in the "
        "gradient's variance, not its sign, and the signed gradient's spectrum stays flat. *Phase ratio*: "
        "max/min of the mean energy over the 2×2 pixel phases (1 even; 4 for equal 3×3 taps). Trained: "
        f"{results['steps']} GAN iterations (batch {results['batch_size']}, width {results['channels']}, "
        f"generator all `{GENERATOR}`).",
        "",
        "## Verdicts",
        "",
        f"Each strided first layer against the 3×3, stride-1 one. *Far above*: every seed more than {FAR:g}× "
        "every seed of stride 1 (floored at 0.001; the predicate of `recipes/reports/article_report.py`); *seed-wise "
        "factor*: the lowest strided seed over the highest stride-1 seed, the largest factor for which that "
        "holds.",
        "",
        "| phase | first layer | scored | strided | stride 1 | ratio of means | seed-wise factor | far above |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in results["comparisons"]:
        lines.append(
            f"| {row['phase']} | {LABELS[row['config']]} | {QUANTITIES[row['quantity']][0]} | "
            f"{format_mean_std(row['high'], 3)} | {format_mean_std(row['low'], 3)} | {row['mean_ratio']:.1f}× | "
            f"{row['seedwise_factor']:.1f}× | {'yes' if row['far_above'] else '**no**'} |"
        )
    lines += [
        "",
        "## All measurements",
        "",
        "| discriminator | first layer | scored | seeds | score | " + " | ".join(f"period {p}" for p in periods)
        + " | " + " | ".join(f"PNR {p} (dB)" for p in periods) + " | phase ratio |",
        "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in periods * 2) + " | --- |",
    ]
    for phase in PHASES:
        for key, entry in results[phase].items():
            for quantity, (label, prefix) in QUANTITIES.items():
                cells = summary_cells(_prefixed(entry["summary"], prefix), periods, 3)
                phase_ratio = format_mean_std(entry["summary"]["phase_energy_ratio"], 2) if prefix else "—"
                lines.append(f"| {phase} | {LABELS[key]} | {label} | {len(entry['runs'])} | {cells} | "
                             f"{phase_ratio} |")
    lines += ["", "Per-seed scores (signed / energy):", ""]
    for phase in PHASES:
        for key, entry in results[phase].items():
            lines.append(f"- {phase}, {LABELS[key]}: " + ", ".join(
                f"{run['score']:.3f} / {run['energy_score']:.3f}" for run in entry["runs"]))
    lines += [
        "",
        f"- machine: {results['machine']}",
        f"- date: {results['date']}; runtime {results['runtime_s']:.0f} s "
        f"(untrained {results['untrained_s']:.0f} s, training and probing {results['trained_s']:.0f} s)",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        levels = num_stages_for(args.image_size)
    except ValueError as err:
        raise UsageError(f"--image-size: {err}") from None
    start = time.perf_counter()
    periods = [2 ** (level + 1) for level in range(levels)]
    datamodule = ImageDataModule("photos", image_size=args.image_size, batch_size=args.batch_size,
                                 heldout_samples=args.heldout)
    datamodule.prepare_data()
    datamodule.setup("fit")
    real = datamodule.heldout_images()

    results: dict = {
        "image_size": args.image_size, "heldout": len(real), "periods": periods, "steps": args.steps,
        "batch_size": args.batch_size, "channels": args.channels,
        "configs": {key: {"first_stride": stride, "first_kernel": kernel, "label": LABELS[key]}
                    for key, (stride, kernel) in GRADIENT_CONFIGS.items()},
        "untrained": {}, "trained": {},
    }
    for key, (stride, kernel) in GRADIENT_CONFIGS.items():
        runs = [gradient_probe_diagnostics(untrained_discriminator(real, first_stride=stride, first_kernel=kernel,
                                                                   seed=seed, base_channels=args.channels),
                                           real, levels)
                for seed in range(args.seeds)]
        entry = {"first_stride": stride, "first_kernel": kernel, "runs": runs, "summary": summarize(runs)}
        results["untrained"][key] = entry
        print(f"untrained, {LABELS[key]}: signed {format_mean_std(entry['summary']['score'], 3)}, energy "
              f"{format_mean_std(entry['summary']['energy_score'], 3)}", flush=True)
    results["untrained_s"] = time.perf_counter() - start

    # Lightning's banners about CPU-only training are noise in a recipe's output.
    logging.getLogger(NAMESPACE).setLevel(logging.ERROR)
    trained_start = time.perf_counter()
    for key, (stride, kernel) in GRADIENT_CONFIGS.items():
        runs = []
        for seed in range(args.train_seeds):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Lightning's advice on workers and loggers, not ours to act on
                task = train_discriminator(datamodule, first_stride=stride, first_kernel=kernel, seed=seed,
                                           steps=args.steps, channels=args.channels)
            runs.append(gradient_probe_diagnostics(task.discriminator, real, levels))
            print(f"trained {args.steps} iterations, {LABELS[key]}, seed {seed}: signed {runs[-1]['score']:.3f}, "
                  f"energy {runs[-1]['energy_score']:.3f}", flush=True)
        results["trained"][key] = {"first_stride": stride, "first_kernel": kernel, "runs": runs,
                                   "summary": summarize(runs)}
    results["trained_s"] = time.perf_counter() - trained_start
    results["comparisons"] = comparisons(results)
    results["runtime_s"] = time.perf_counter() - start
    results.update(provenance("recipes/reports/gradient_probe.py", argv))
    atomic_write_json(args.out / "gradients.json", results)
    atomic_write_text(args.out / "gradients.md", _markdown(results, results["command"]))
    print(f"wrote {args.out / 'gradients.md'} and gradients.json in {results['runtime_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:]))
