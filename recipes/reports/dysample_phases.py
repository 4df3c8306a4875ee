"""DySample's sampling grid by sub-pixel phase: untrained, and after the leaderboard's training runs.

    python recipes/reports/dysample_phases.py --runs /tmp/lcb-grid --runs /tmp/lcb-sr

DySample samples each output pixel at its sub-pixel centre moved by a learned offset, predicted per
phase through a pixel shuffle. This measures, for every DySample layer, how far the mean offset
differs between phases (:func:`~lightning_checkerboard.experiments.sampling_phases`): 0 is bilinear
upsampling's even grid; a spread makes neighbouring samples bunch and leaves a period-``scale``
pattern. It does so for untrained generators (DCGAN at 32², width 32, as ``recipes/reports/init_probe.py``)
and super-resolution networks (the recipe's default), over ``--seeds`` seeds, and for every finished
``dysample`` run of the GAN, super-resolution and style-transfer tasks under ``--runs`` (the trained
weights from ``checkpoints/last.ckpt``, beside the checkerboard score the run recorded). Writes
``leaderboards/dysample_phases.md`` and ``dysample_phases.json`` (read by ``recipes/reports/article_report.py``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard._io import atomic_write_json, atomic_write_text
from lightning_checkerboard.callbacks.checkpoint import load_checkpoint
from lightning_checkerboard.cli import UsageError, positive_int, run_cli
from lightning_checkerboard.experiments import model_sampling_phases
from lightning_checkerboard.leaderboard.collect import collect_local
from lightning_checkerboard.models import DCGANGenerator
from lightning_checkerboard.reporting import format_mean_std, mean_std, provenance
from lightning_checkerboard.tasks import GANTask, SuperResolutionTask
from lightning_checkerboard.training.config import SuperResolutionConfig

#: Noise vectors per trained generator, and held-out images per super-resolution network.
SAMPLES = 256
#: Held-out content photos per style-transfer network (128² each).
STYLE_IMAGES = 16
#: The tasks whose trained networks are measured.
TASKS = ("gan", "super_resolution", "style_transfer")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="recipes/reports/dysample_phases.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--runs", type=Path, action="append", default=[],
                        help="a folder of run directories (repeat it); its finished dysample runs are measured")
    parser.add_argument("--seeds", type=positive_int, default=5, help="untrained networks per task")
    parser.add_argument("--out", type=Path, default=Path("leaderboards"), help="folder for dysample_phases.md/.json")
    return parser


def _layers(measured: list[dict]) -> list[dict]:
    keep = ("layer", "size", "spread", "relative_spread", "rms_displacement", "phase_mean_x", "phase_mean_y")
    return [{key: entry[key] for key in keep} for entry in measured]


def untrained_gan(seed: int) -> list[dict]:
    torch.manual_seed(seed)
    generator = DCGANGenerator("dysample", image_size=32, base_channels=32).train()
    return _layers(model_sampling_phases(generator, torch.randn(SAMPLES, generator.latent_dim)))


def untrained_super_resolution(seed: int) -> list[dict]:
    torch.manual_seed(seed)
    config = SuperResolutionConfig(upsampler="dysample")
    task = SuperResolutionTask("dysample", **config.values("scale", "features", "hidden_channels", "activation",
                                                           "residual", "loss", "lr")).eval()
    lr = torch.rand(16, 3, config.image_size // config.scale, config.image_size // config.scale)
    return _layers(model_sampling_phases(task, lr))


def trained(run_dir: Path, record) -> list[dict]:
    if record.task == "style_transfer":
        style = _recipe("style_figure")
        task = style.load_task(run_dir)
        count = min(STYLE_IMAGES, record.config["eval_samples"])
        return _layers(model_sampling_phases(task.net, style.heldout_content(record, count)))
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    if record.task == "gan":
        task = GANTask(**checkpoint["hyper_parameters"])
        task.load_state_dict(checkpoint["state_dict"])
        generator = (task.generator_ema or task.generator).eval()
        noise = torch.randn(SAMPLES, generator.latent_dim, generator=torch.Generator().manual_seed(0))
        return _layers(model_sampling_phases(generator, noise))
    task = SuperResolutionTask(**checkpoint["hyper_parameters"])
    task.load_state_dict(checkpoint["state_dict"])
    task.eval()
    return _layers(model_sampling_phases(task, task.degrade(_recipe("super_resolution_report").heldout_images(record))))


def _recipe(name: str):
    """``recipes/<name>.py``, a recipe beside this one (it rebuilds a run's held-out images)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _largest(layers: list[dict]) -> float:
    return max(entry["relative_spread"] for entry in layers)


def measure(folders: list[Path], seeds: int) -> dict:
    groups: dict[str, list[dict]] = defaultdict(list)
    for seed in range(seeds):
        groups["gan, untrained"].append({"seed": seed, "layers": untrained_gan(seed)})
        groups["super_resolution, untrained"].append({"seed": seed, "layers": untrained_super_resolution(seed)})
    for folder in folders:
        if not folder.is_dir():
            raise UsageError(f"--runs {folder} is not a folder")
        for found in sorted(collect_local(folder).runs, key=lambda c: (c.record.task, c.record.seed)):
            record = found.record
            if record.status != "finished" or "dysample" not in record.upsampler_stages:
                continue
            if record.task not in TASKS:
                continue
            groups[f"{record.task}, trained {record.max_steps} iterations"].append({
                "seed": record.seed, "layers": trained(found.run_dir, record),
                "checkerboard": record.metrics.get("checkerboard"),
                "checkerboard_upper": record.metrics.get("checkerboard_upper"),
            })
    summary = {}
    for name, entries in groups.items():
        spreads = [_largest(entry["layers"]) for entry in entries]
        summary[name] = {"largest_relative_spread": spreads, "mean_std": list(mean_std(spreads))}
    return {"groups": dict(groups), "summary": summary}


def _markdown(results: dict) -> str:
    lines = [
        "# DySample's sampling grid by sub-pixel phase",
        "",
        f"Generated by `{results['command']}`; do not edit by hand.",
        "",
        "A DySample layer samples output pixel (phase p of input pixel i) at p's sub-pixel centre plus a learned "
        "offset. The displacement is the sample's position minus bilinear upsampling's, in input pixels. "
        "**Relative spread** is the largest difference between two phases' mean displacements (either axis) as a "
        "share of the sample spacing 1/scale: 0 is an even grid; at scale 2, 0.1 makes neighbouring gaps "
        "0.45 and 0.55 px. Untrained: DCGAN generators at 32² (width 32, DCGAN init with DySample's own offset "
        f"init, BatchNorm in training mode, {SAMPLES} noise vectors) and the super-resolution recipe's default "
        "network (16 random 32² inputs). Trained: the finished `dysample` runs of the leaderboards, weights from "
        f"their last checkpoint, on {SAMPLES} fixed noise vectors (EMA generator), the held-out photos "
        f"(super-resolution) or up to {STYLE_IMAGES} held-out content photos (style transfer).",
        "",
        "| networks | n | largest relative spread per network | mean ± std |",
        "| --- | --- | --- | --- |",
    ]
    for name, entry in results["summary"].items():
        cells = ", ".join(f"{v:.3f}" for v in entry["largest_relative_spread"])
        lines.append(f"| {name} | {len(entry['largest_relative_spread'])} | {cells} | "
                     f"{format_mean_std(entry['mean_std'], 3)} |")
    lines += ["", "## Per layer", "",
              "| networks | seed | layer | input | relative spread | RMS displacement (px) | phase means x (px) | "
              "phase means y (px) | output checkerboard (levels) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, entries in results["groups"].items():
        for entry in entries:
            score = entry.get("checkerboard")
            cell = "" if score is None else f"{score:.3f} (< {entry['checkerboard_upper']:.2f})"
            for layer in entry["layers"]:
                size = "×".join(str(v) for v in layer["size"])
                means_x = ", ".join(f"{v:+.3f}" for v in layer["phase_mean_x"])
                means_y = ", ".join(f"{v:+.3f}" for v in layer["phase_mean_y"])
                lines.append(f"| {name} | {entry['seed']} | `{layer['layer']}` | {size} | "
                             f"{layer['relative_spread']:.3f} | {layer['rms_displacement']:.3f} | {means_x} | "
                             f"{means_y} | {cell} |")
    lines += ["", f"- machine: {results['machine']}",
              f"- date: {results['date']}; runtime {results['runtime_s']:.1f} s", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    results = measure(args.runs, args.seeds)
    results.update(runtime_s=time.perf_counter() - start, seeds=args.seeds,
                   **provenance("recipes/reports/dysample_phases.py", argv))
    atomic_write_json(args.out / "dysample_phases.json", results)
    atomic_write_text(args.out / "dysample_phases.md", _markdown(results))
    for name, entry in results["summary"].items():
        print(f"{name:<44} largest relative spread {format_mean_std(mean_std(entry['largest_relative_spread']), 3)}")
    print(f"wrote {args.out / 'dysample_phases.md'} and dysample_phases.json in {results['runtime_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:]))
