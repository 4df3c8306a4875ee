"""Style transfer with transposed convolutions vs resize-convolutions: a side-by-side figure and a score table.

    python recipes/run_grid.py --task style_transfer --upsamplers deconv nearest_conv --runs /tmp/lcb-grid
    python recipes/reports/style_figure.py --runs /tmp/lcb-grid --out leaderboards

Reads the finished ``recipes/style_transfer.py`` runs under ``--runs``, and writes
``leaderboards/style_transfer.md`` and ``style_transfer.json`` (every run's checkerboard score of stylised held-out photos,
with per-period amplitude and PNR, and mean ± std per upsampler) and
``leaderboards/figures/style_transfer.png``: held-out content photos stylised by the first seed's
network of each upsampler, each beside a 4× nearest-neighbour zoom of its centre, where a
checkerboard is a pixel-scale pattern.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections import defaultdict
from pathlib import Path

import torch

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard._io import atomic_write_bytes, atomic_write_json, atomic_write_text
from lightning_checkerboard.cli import UsageError, positive_int, run_cli
from lightning_checkerboard.data import ImageDataModule
from lightning_checkerboard.leaderboard.aggregate import budget_of, protocol_of
from lightning_checkerboard.leaderboard.collect import collect_local
from lightning_checkerboard.models import load_loss_network
from lightning_checkerboard.records import ResultRecord
from lightning_checkerboard.reporting import format_mean_std, mean_std, provenance
from lightning_checkerboard.tasks import StyleTransferTask

ZOOM = 4


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="recipes/reports/style_figure.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="folder holding style_transfer/ run directories")
    parser.add_argument("--out", type=Path, default=Path("leaderboards"), help="folder for style_transfer.md and figures/")
    parser.add_argument("--upsamplers", nargs="+", default=["deconv", "nearest_conv"], metavar="SPEC")
    parser.add_argument("--images", type=positive_int, default=3, help="held-out photos in the figure")
    return parser


def load_task(run_dir: Path) -> StyleTransferTask:
    """The trained task of a run, from its ``checkpoints/last.ckpt`` (the loss network is not needed)."""
    task = StyleTransferTask.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu",
                                                  loss_network=load_loss_network("random"))
    return task.eval()


def heldout_content(record: ResultRecord, count: int) -> torch.Tensor:
    """The run's first ``count`` held-out content images, rebuilt from its recorded settings."""
    config = record.config
    datamodule = ImageDataModule(config["content_dataset"], image_size=record.image_size, batch_size=config["batch_size"],
                                 seed=config["data_seed"], channels=3, heldout_samples=config["eval_samples"])
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule.heldout_images(count)


def _zoom(image: torch.Tensor) -> torch.Tensor:
    size = image.shape[-1] // ZOOM
    top = (image.shape[-1] - size) // 2
    crop = image[:, top:top + size, top:top + size]
    return crop.repeat_interleave(ZOOM, 1).repeat_interleave(ZOOM, 2)


def plot(content: torch.Tensor, stylised: dict[str, torch.Tensor], titles: dict[str, str], dpi: int = 80) -> bytes:
    """PNG bytes: one row per content image; content, then each upsampler's output and its zoom."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = [("content (held out)", content)]
    for name, images in stylised.items():
        columns += [(titles[name], images), (f"{name}\ncentre ×{ZOOM}", torch.stack([_zoom(i) for i in images]))]
    rows = len(content)
    side = max(content.shape[-1], 96) / dpi * 1.15  # titles need room even for small images
    figure = Figure(figsize=(side * len(columns), side * rows + 0.5), dpi=dpi)
    FigureCanvasAgg(figure)
    grid = figure.subplots(rows, len(columns), squeeze=False)
    for c, (title, images) in enumerate(columns):
        for r in range(rows):
            axes = grid[r][c]
            axes.imshow(images[r].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            if r == 0:
                axes.set_title(title, fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _markdown(runs: dict[str, list[ResultRecord]], levels: int, command: str, info: dict[str, str]) -> str:
    periods = [2**p for p in range(1, levels + 1)]
    first = next(iter(runs.values()))[0]
    config = first.config
    lines = [
        "# Style transfer: checkerboards of transposed convolutions vs resize-convolutions",
        "",
        f"Generated by `{command}`; do not edit by hand.",
        "",
        f"`recipes/style_transfer.py` default runs: a Johnson et al. transformer net trained {first.max_steps} "
        f"iterations (batch {config['batch_size']}) on `{first.dataset}` crops at {first.image_size}², style "
        f"`{config['style']}`, loss network `{first.protocol.get('loss_network')}`, total variation "
        f"{'off' if not config.get('tv_weight') else config['tv_weight']}. Scored on "
        f"{first.protocol.get('eval_samples')} stylised held-out photos: the checkerboard score in 8-bit levels "
        "(lower is better; the photos themselves read 0), the contrast-free ratio, and per period the pattern's "
        "amplitude and peak-to-reference ratio (PNR, dB).",
        "",
        "| upsampler | seed | checkerboard (levels) | ratio | "
        + " | ".join(f"amplitude {p}" for p in periods) + " | " + " | ".join(f"PNR {p} (dB)" for p in periods)
        + " | run |",
        "|---" * (4 + 2 * len(periods) + 1) + "|",
    ]
    for name, records in runs.items():
        for record in records:
            m = record.metrics
            lines.append(
                f"| `{name}` | {record.seed} | {m['checkerboard']:.3f} | {m['checkerboard_ratio']:.4f} | "
                + " | ".join(f"{m.get(f'amplitude_period_{p}', float('nan')):.3f}" for p in periods) + " | "
                + " | ".join(f"{m.get(f'pnr_db_period_{p}', float('nan')):.1f}" for p in periods)
                + f" | `{record.run_id}` |"
            )
    lines += ["", "| upsampler | runs | checkerboard (levels), mean ± std | ratio, mean ± std | train seconds, mean (as run) |",
              "|---|---|---|---|---|"]
    for name, records in runs.items():
        seconds = [r.throughput.get("train_seconds") or float("nan") for r in records]
        lines.append(
            f"| `{name}` | {len(records)} | {format_mean_std(mean_std([r.metrics['checkerboard'] for r in records]), 3)} | "
            f"{format_mean_std(mean_std([r.metrics['checkerboard_ratio'] for r in records]), 4)} | "
            f"{sum(seconds) / len(seconds):.0f} |"
        )
    lines += ["", "![content, stylised and zoomed outputs](figures/style_transfer.png)", "",
              "- train seconds as each run recorded them (`recipes/run_grid.py` gives every run one compute thread)",
              f"- figure made on: {info['machine']}", f"- date: {info['date']}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    found = collect_local(args.runs)
    runs: dict[str, list[ResultRecord]] = defaultdict(list)
    dirs: dict[str, list[Path]] = defaultdict(list)
    for collected in sorted(found.runs, key=lambda c: (c.record.seed, c.record.run_id)):
        record = collected.record
        if record.task == "style_transfer" and record.status == "finished" and record.upsampler in args.upsamplers:
            runs[record.upsampler].append(record)
            dirs[record.upsampler].append(collected.run_dir)
    missing = [name for name in args.upsamplers if name not in runs]
    if missing:
        raise UsageError(f"no finished style_transfer runs of {', '.join(missing)} under {args.runs}; "
                         "run recipes/run_grid.py --task style_transfer first")
    runs = {name: runs[name] for name in args.upsamplers}
    settings = {json.dumps([protocol_of(r), budget_of(r), r.dataset, r.image_size], sort_keys=True, default=str)
                for records in runs.values() for r in records}
    if len(settings) > 1:
        raise UsageError(f"the style_transfer runs under {args.runs} were trained or measured in {len(settings)} "
                         "different ways (loss network, budget or protocol); give each grid its own --runs folder")
    first = runs[args.upsamplers[0]][0]
    if args.images > first.protocol.get("eval_samples", 0):
        raise UsageError(f"--images must be at most the runs' held-out samples ({first.protocol.get('eval_samples')}); "
                         f"got {args.images}")
    content = heldout_content(first, args.images)
    stylised, titles = {}, {}
    for name in args.upsamplers:
        task = load_task(dirs[name][0])
        stylised[name] = task.stylise(content)
        record = runs[name][0]
        titles[name] = f"{name} (seed {record.seed})\n{record.metrics['checkerboard']:.2f} levels"
    figures = args.out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(figures / "style_transfer.png", plot(content, stylised, titles))
    argv_text = ["--runs", str(args.runs), "--out", str(args.out)]
    info = provenance("recipes/reports/style_figure.py", argv_text)
    atomic_write_text(args.out / "style_transfer.md",
                      _markdown(runs, int(first.protocol.get("levels", 2)), info["command"], info))
    atomic_write_json(args.out / "style_transfer.json", {  # read by recipes/reports/article_report.py
        **info,
        "loss_network": first.protocol.get("loss_network"),
        "image_size": first.image_size,
        "max_steps": first.max_steps,
        "runs": {name: [{"seed": r.seed, "run_id": r.run_id, **r.metrics} for r in records]
                 for name, records in runs.items()},
    })
    for name, records in runs.items():
        scores = ", ".join(f"{r.metrics['checkerboard']:.3f}" for r in records)
        print(f"{name}: checkerboard {scores} levels (seeds {', '.join(str(r.seed) for r in records)})")
    print(f"wrote {args.out / 'style_transfer.md'} and {figures / 'style_transfer.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
