"""Style transfer with transposed convolutions vs resize-convolutions: a side-by-side figure and a score table.

    python recipes/run_grid.py --task style_transfer --upsamplers deconv nearest_conv --runs /tmp/lcb-grid
    python recipes/reports/style_figure.py --runs /tmp/lcb-grid --out leaderboards

Reads the finished ``recipes/style_transfer.py`` runs under ``--runs``, and writes
``leaderboards/style_transfer.md`` and ``style_transfer.json`` (every run's checkerboard score of stylised held-out photos,
with per-period amplitude and PNR, and mean ± std per upsampler) and
``leaderboards/figures/style_transfer.png``: held-out content photos stylised by the first seed's
network of each upsampler, a row per upsampler in its colour, each photo at its own size beside a 4×
zoom (4×4 blocks, never resampled) of the window with the most period-2 pattern, where a
checkerboard is a pixel-scale pattern. ``--grids <leaderboard folder>`` redraws only the figure from
the sample grids a leaderboard copied, for when the runs are gone.
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
    parser.add_argument("--images", type=positive_int, default=2, help="held-out photos in the figure")
    parser.add_argument("--grids", type=Path, default=None, metavar="LEADERBOARD",
                        help="measure nothing: redraw only figures/style_transfer.png from this leaderboard folder's "
                             "copied sample grids (when the runs are gone)")
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


#: The side of the window shown at ``ZOOM``× beside each output.
WINDOW = 32


def plot(content: torch.Tensor, stylised: dict[str, torch.Tensor], titles: dict[str, str]) -> bytes:
    """PNG bytes: a row for the content and one per upsampler (in its colour); per image, the picture at its
    own size and, at ``ZOOM``×, the ``WINDOW``-pixel window where the outputs hold the most period-2 pattern
    (the same window in every row), never resampled."""
    import numpy as np

    from lightning_checkerboard.leaderboard.figures import panel_figure
    from lightning_checkerboard.leaderboard.thumbnails import window_energies

    as_uint8 = lambda image: (image.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # noqa: E731
    grey = lambda image: (as_uint8(image).astype(np.float64) @ np.array([0.299, 0.587, 0.114]))  # noqa: E731
    side = min(WINDOW, content.shape[-1])
    windows = []
    for k in range(len(content)):
        energies = sum(window_energies(grey(images[k]), side) for images in stylised.values())
        a, b = np.unravel_index(int(np.argmax(energies)), energies.shape)
        windows.append((2 * int(a), 2 * int(b)))
    crop = lambda image, k: image[:, windows[k][0]:windows[k][0] + side, windows[k][1]:windows[k][1] + side]  # noqa: E731
    rows, labels, styles = [], [], []
    for name, images in [("content (held out)", content), *stylised.items()]:
        row = []
        for k in range(len(content)):
            row += [as_uint8(images[k]), as_uint8(crop(images[k], k))]
        rows.append(row)
        labels.append(titles.get(name, name).replace("\n", " · "))
        styles.append(name if name in stylised else None)
    columns = [text for k in range(len(content)) for text in (f"photo {k + 1}", f"window ×{ZOOM}")]
    return panel_figure(rows, zoom=[1, ZOOM] * len(content), row_labels=labels, row_styles=styles,
                        column_labels=columns, title="Style transfer: held-out photos stylised by each upsampler's network",
                        note=f"Each photo at its own size, and the {side}-pixel window with the most period-2 pattern "
                             f"as {ZOOM}×{ZOOM} blocks.")


def _grid_inputs(folder: Path, upsamplers: list[str], count: int) -> tuple[torch.Tensor, dict[str, torch.Tensor],
                                                                        dict[str, str]]:
    """``plot``'s inputs from a leaderboard folder's copied sample grids (its style-transfer table, the first
    seed of each upsampler): the first ``count`` content photos and their stylised outputs."""
    from lightning_checkerboard._untrusted import open_image
    from lightning_checkerboard.leaderboard.thumbnails import MAX_PICTURE_PIXELS, grid_samples

    try:
        board = json.loads((folder / "leaderboard.json").read_text())
        table = next(t for t in board["tables"] if t["task"] == "style_transfer")
    except (OSError, ValueError, KeyError, StopIteration) as err:
        raise UsageError(f"--grids {folder}: no leaderboard.json with a style-transfer table ({err})") from None
    tensor = lambda a: torch.from_numpy(a.copy()).permute(2, 0, 1).float() / 255  # noqa: E731
    rows = {row["upsampler"]: row for row in table["rows"]}
    missing = [name for name in upsamplers if name not in rows]
    if missing:
        raise UsageError(f"--grids {folder}: its style-transfer table has no row of {', '.join(missing)}")
    content, stylised, titles = None, {}, {}
    for name in upsamplers:
        row = rows[name]
        seed = min(row["seeds"])
        run_id = row["run_ids"][row["seeds"].index(seed)]
        with open_image(folder / "assets" / run_id / "final.png", root=folder, max_pixels=MAX_PICTURE_PIXELS) as image:
            samples = grid_samples(image.convert("RGB"), "style_transfer", int(table["image_size"]))
        if len(samples["output"]) < count:
            raise UsageError(f"--images must be at most the grids' photos ({len(samples['output'])}); got {count}")
        if content is None:
            content = torch.stack([tensor(a) for a in samples["content"][:count]])
        stylised[name] = torch.stack([tensor(a) for a in samples["output"][:count]])
        values = [r.get("values", {}).get("checkerboard") for r in row.get("runs", []) if r.get("seed") == seed]
        score = f" · {values[0]:.2f} levels" if values and isinstance(values[0], (int, float)) else ""
        titles[name] = f"{name} (seed {seed}){score}"
    return content, stylised, titles


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
    if args.grids is not None:
        path = args.out / "figures" / "style_transfer.png"
        atomic_write_bytes(path, plot(*_grid_inputs(args.grids, args.upsamplers, args.images)))
        print(f"wrote {path} from the sample grids in {args.grids} (nothing measured)")
        return 0
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
        titles[name] = f"{name} (seed {record.seed}) · {record.metrics['checkerboard']:.2f} levels"
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
