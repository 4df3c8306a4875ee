"""Does the GAN recipe's default learn? The generator's weight average against the live generator.

    python recipes/reports/gan_defaults.py --runs /tmp/lcb-defaults      # trains 6 default runs, then reports
    python recipes/reports/gan_defaults.py --runs /tmp/lcb-defaults --seeds 0 1 2 --no-train

Trains ``recipes/gan.py --upsampler nearest_conv`` at its default budget for every seed with the
DCGAN discriminator (BatchNorm, the recipe's default) and with a spectrally normalised one
(``--disc-norm spectral``). Every run keeps both generators in its checkpoint, so each run is
evaluated twice on the same training trajectory: with the live generator (what the recipe evaluated
before it averaged weights, ``--ema-decay 0``) and with the weight average (the default now). For
each it measures, on 256 samples against 256 held-out photo crops:

- SWD (multi-scale sliced Wasserstein distance, x 1e3; lower is better);
- the share of flat samples, whose pixel standard deviation (over all pixels and channels) is below
  the 10th percentile of the held-out crops' (so 10 % of real crops are flat by this measure), and of
  near-uniform ones, below 4 / 255, against the same share among the held-out crops: a generator that
  collapses onto flat colour fields makes far more of them than the data holds;
- the checkerboard score and its 95 % bound.

Writes ``leaderboards/gan_defaults.md`` and ``.json``. A run folder that already holds a finished run
for a configuration and seed is reused, so an interrupted report continues where it stopped.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

import torch

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard._io import atomic_write_json, atomic_write_text
from lightning_checkerboard.cli import UsageError, non_negative_int, run_cli
from lightning_checkerboard.data import ImageDataModule
from lightning_checkerboard.functional import sliced_wasserstein_distance
from lightning_checkerboard.metrics import CheckerboardScore
from lightning_checkerboard.records import RecordError, read_record
from lightning_checkerboard.reporting import provenance
from lightning_checkerboard.tasks import GANTask

#: Configurations trained: label -> extra flags of recipes/gan.py.
CONFIGS = {"DCGAN discriminator": [], "spectral-norm discriminator": ["--disc-norm", "spectral"]}
#: A sample whose pixel standard deviation is below this is near-uniform (4 levels of 255).
UNIFORM_STD = 4.0 / 255.0
SAMPLES = 256


def _folder(label: str) -> str:
    return "bn" if label.startswith("DCGAN") else "sn"


def _finished_run(root: Path, seed: int) -> Path | None:
    for record_path in sorted(root.glob(f"gan/*/*/seed{seed}-*/result.json")):
        try:
            if read_record(record_path).status == "finished":
                return record_path.parent
        except RecordError:
            continue
    return None


def near_uniform_share(images: torch.Tensor, threshold: float = UNIFORM_STD) -> float:
    """Share of images whose pixel standard deviation is below ``threshold``."""
    return float((images.flatten(1).std(dim=1) < threshold).float().mean())


def flat_threshold(real: torch.Tensor) -> float:
    """The 10th percentile of the real images' pixel standard deviations."""
    return float(real.flatten(1).std(dim=1).quantile(0.1))


def evaluate(run_dir: Path, real: torch.Tensor) -> dict[str, dict[str, float]]:
    """SWD, near-uniform share and checkerboard score of the live and the averaged generator."""
    task = GANTask.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu",
                                        weights_only=True)  # data only: a run directory may come from anyone
    noise = torch.randn(SAMPLES, task.hparams.latent_dim, generator=torch.Generator().manual_seed(0))
    results = {}
    average = task.generator_ema
    for label in ("live", "average"):
        task.generator_ema = average if label == "average" else None
        task._ema_statistics_step = None
        fake = task.sample(noise=noise)
        score = CheckerboardScore(levels=3)
        score.update(fake)
        diagnostics = score.diagnostics()
        results[label] = {"swd": float(sliced_wasserstein_distance(fake, real)),
                          "flat": near_uniform_share(fake, flat_threshold(real)),
                          "near_uniform": near_uniform_share(fake),
                          "checkerboard": float(diagnostics["score"]), "checkerboard_upper": float(diagnostics["upper"])}
    return results


def _mean_std(values: list[float], digits: int = 2) -> str:
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


def render(report: dict, meta: dict[str, str]) -> str:
    real_share = report["real_near_uniform"]
    lines = [
        "# The GAN recipe's default: weight average against live generator",
        "",
        f"Generated by `{meta['command']}` on {meta['date']} ({meta['machine']}). Do not edit by hand.",
        "",
        f"`recipes/gan.py --upsampler nearest_conv` at its default budget (photos, 32×32, batch 64, "
        f"{report['max_steps']} iterations), seeds {', '.join(map(str, report['seeds']))}. Each run is measured "
        f"twice on the same training: with the live generator (before: `--ema-decay 0`) and with its weight "
        f"average (the default, `--ema-decay 0.999`). {SAMPLES} samples against {SAMPLES} held-out crops; mean ± "
        f"std over seeds. Flat: pixel std below the 10th percentile of the held-out crops' "
        f"({report['flat_threshold'] * 255:.1f}/255; 0.100 of real crops by construction). Near-uniform: pixel std "
        f"below 4/255; held-out real crops: {real_share:.3f}.",
        "",
        "| discriminator | generator | SWD ↓ | flat share | near-uniform share | checkerboard (levels) | 95 % bound "
        "| per seed SWD |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, per_seed in report["configs"].items():
        for which in ("live", "average"):
            runs = [per_seed[str(seed)][which] for seed in report["seeds"] if str(seed) in per_seed]
            if not runs:
                continue
            lines.append(
                f"| {label} | {which} | {_mean_std([r['swd'] for r in runs])} | "
                f"{_mean_std([r['flat'] for r in runs], 3)} | {_mean_std([r['near_uniform'] for r in runs], 3)} | {_mean_std([r['checkerboard'] for r in runs])} | "
                f"{_mean_std([r['checkerboard_upper'] for r in runs])} | "
                + ", ".join(f"{r['swd']:.2f}" for r in runs) + " |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="recipes/reports/gan_defaults.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--runs", type=Path, required=True, help="folder for the training runs")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--configs", nargs="+", choices=[_folder(c) for c in CONFIGS], default=["bn", "sn"],
                        help="bn: DCGAN discriminator; sn: spectral-norm discriminator")
    parser.add_argument("--no-train", action="store_true", help="only report the runs already in --runs")
    parser.add_argument("--out", type=Path, default=Path("leaderboards"), help="folder for gan_defaults.md/.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    meta = provenance("recipes/reports/gan_defaults.py", argv if argv is not None else sys.argv[1:])
    gan = Path(__file__).resolve().parents[1] / "gan.py"
    datamodule = ImageDataModule("photos", image_size=32, batch_size=64, heldout_samples=SAMPLES)
    datamodule.prepare_data()
    datamodule.setup("fit")
    real = datamodule.heldout_images()[:SAMPLES]
    report = {"seeds": args.seeds, "max_steps": 1000, "real_near_uniform": near_uniform_share(real),
              "flat_threshold": flat_threshold(real), "configs": {}}
    for label, flags in CONFIGS.items():
        if _folder(label) not in args.configs:
            continue
        root = args.runs / _folder(label)
        per_seed = report["configs"].setdefault(label, {})
        for seed in args.seeds:
            run_dir = _finished_run(root, seed)
            if run_dir is None and not args.no_train:
                command = [sys.executable, str(gan), "--upsampler", "nearest_conv", "--seed", str(seed),
                           "--logger", "none", "--fid", "off", "--output-dir", str(root), *flags]
                print("running:", " ".join(command[1:]), flush=True)
                subprocess.run(command, check=False)
                run_dir = _finished_run(root, seed)
            if run_dir is None:
                print(f"{label}, seed {seed}: no finished run in {root}", file=sys.stderr)
                continue
            per_seed[str(seed)] = evaluate(run_dir, real)
            print(f"{label}, seed {seed}: {per_seed[str(seed)]}", flush=True)
    if not any(report["configs"].values()):
        raise UsageError(f"no finished runs under {args.runs}")
    atomic_write_json(args.out / "gan_defaults.json", {"provenance": meta, **report})
    atomic_write_text(args.out / "gan_defaults.md", render(report, meta))
    print(f"wrote {args.out / 'gan_defaults.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
