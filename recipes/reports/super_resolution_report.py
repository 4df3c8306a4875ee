"""Super-resolution with every registered upsampler: how far each ends above bicubic, and what patterns it leaves.

    python recipes/run_grid.py --task super_resolution --runs /tmp/lcb-sr --jobs 2 --no-build
    python recipes/reports/super_resolution_report.py --runs /tmp/lcb-sr --out leaderboards

Reads the finished ``recipes/super_resolution.py`` runs under ``--runs`` (all trained and measured
the same way: give each grid its own folder) and writes ``super_resolution.md`` (the answers, mean ±
std per upsampler over seeds, every run), ``super_resolution.json`` (the same numbers, read by
``recipes/reports/article_report.py`` and the tests) and ``figures/super_resolution.png``: the held-out
crop bicubic errs most on, a row each for high resolution, bicubic and each upsampler's output (its
first seed): the crop, its patch where bicubic errs most at 4×, and the error against the high
resolution ×8, never resampled. ``--grids <leaderboard folder>`` redraws only the figure from the
sample grids a leaderboard copied (the sample bicubic errs most on among them), for when the runs
are gone.

The answers use the checkerboard score's own detection rule: a score above 0 is a grid pattern that
stands above the noise of the measurement (see ``CheckerboardScore``); 0 means none was found, and
the 95 % bound says how large a pattern could still hide.
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
from lightning_checkerboard.callbacks.checkpoint import load_checkpoint
from lightning_checkerboard.cli import UsageError, run_cli
from lightning_checkerboard.data import ImageDataModule
from lightning_checkerboard.data.photo_holdout import HeldoutPhotosDataModule
from lightning_checkerboard.leaderboard.aggregate import budget_of, protocol_of
from lightning_checkerboard.leaderboard.collect import collect_local
from lightning_checkerboard.records import ResultRecord
from lightning_checkerboard.reporting import format_mean_std, mean_std, provenance
from lightning_checkerboard.tasks import SuperResolutionTask
from lightning_checkerboard.upsamplers import list_upsamplers

ZOOM, PATCH = 4, 16
#: The upsamplers the answers compare.
NEEDED = ("pixel_shuffle_icnr", "pixel_shuffle", "deconv", "nearest_conv")


def run_numbers(record: ResultRecord) -> dict:
    """One run's numbers: final, bicubic and untrained (``untrained_*``), and the gain over bicubic."""
    m, b = record.metrics, record.baseline
    keys = ("psnr", "ssim", "psnr_bicubic", "ssim_bicubic", "residual_checkerboard", "residual_checkerboard_upper",
            "checkerboard", "checkerboard_upper")
    return {"seed": record.seed, "run_id": record.run_id, **{key: m.get(key) for key in keys},
            "gain_db": m["psnr"] - m["psnr_bicubic"],
            **{f"untrained_{key}": b.get(key) for key in ("psnr", "checkerboard", "checkerboard_upper",
                                                        "residual_checkerboard", "residual_checkerboard_upper")},
            "train_seconds": record.throughput.get("train_seconds")}


def _values(runs: list[dict], key: str) -> list[float]:
    return [run[key] for run in runs]


def _cell(runs: list[dict], key: str, digits: int = 3) -> str:
    return format_mean_std(mean_std(_values(runs, key)), digits)


def _seeds(runs: list[dict], key: str, digits: int = 3) -> str:
    return ", ".join(f"{value:.{digits}f}" for value in _values(runs, key))


def answers(runs: dict[str, list[dict]]) -> list[dict]:
    """The questions, each as a claim, with the measured answer and whether it holds (``True``/``False``)."""
    icnr, shuffle, deconv, nearest = (runs[name] for name in NEEDED)
    start_clean = all(run["untrained_checkerboard"] == 0 for run in icnr)
    gap = [a - b for a, b in zip(sorted(_values(icnr, "psnr")), sorted(_values(shuffle, "psnr")))]
    mean_gap = mean_std(_values(icnr, "psnr"))[0] - mean_std(_values(shuffle, "psnr"))[0]
    pattern = all(run["residual_checkerboard"] > 0 for run in deconv)
    clean = all(run["residual_checkerboard"] == 0 for run in nearest)
    gains = {name: _values(entries, "gain_db") for name, entries in runs.items()}
    every_gain = [gain for values in gains.values() for gain in values]
    return [
        {"question": "Does pixel_shuffle_icnr start free of checkerboard artifacts?",
         "claim": "ICNR-initialised sub-pixel convolution starts free of checkerboard artifacts",
         "answer": f"untrained output checkerboard {_seeds(icnr, 'untrained_checkerboard')} levels (95 % bounds "
                   f"{_seeds(icnr, 'untrained_checkerboard_upper', 2)}); plain pixel_shuffle untrained: "
                   f"{_seeds(shuffle, 'untrained_checkerboard', 2)} levels",
         "holds": start_clean},
        {"question": "Does pixel_shuffle_icnr end with PSNR at least that of plain pixel_shuffle?",
         "claim": "ICNR ends with PSNR at least that of plain sub-pixel convolution",
         "answer": f"PSNR {_cell(icnr, 'psnr')} dB against {_cell(shuffle, 'psnr')} dB: {mean_gap:+.3f} dB in the "
                   f"mean (seed-sorted differences {', '.join(f'{g:+.3f}' for g in gap)})",
         "holds": mean_gap >= 0},
        {"question": "Does deconv leave a measurable residual pattern where nearest_conv leaves none?",
         "claim": "Transposed convolution leaves a grid pattern in the error; resize-convolution leaves none",
         "answer": f"residual checkerboard: deconv {_seeds(deconv, 'residual_checkerboard')} levels (bounds "
                   f"{_seeds(deconv, 'residual_checkerboard_upper', 2)}; untrained output "
                   f"{_cell(deconv, 'untrained_checkerboard', 1)}); nearest_conv "
                   f"{_seeds(nearest, 'residual_checkerboard')} (bounds {_seeds(nearest, 'residual_checkerboard_upper', 2)})",
         "holds": pattern and clean},
        {"question": "How far does each upsampler end above bicubic?",
         "claim": "Every upsampler ends above bicubic interpolation (PSNR gain, dB)",
         "answer": "; ".join(f"{name} {format_mean_std(mean_std(values), 2)} dB" for name, values in gains.items())
                   + f" (every seed above: {'yes' if min(every_gain) > 0 else 'no'}, lowest {min(every_gain):+.2f} dB)",
         "holds": min(every_gain) > 0},
    ]


def load_runs(folder: Path) -> tuple[dict[str, list[ResultRecord]], dict[str, list[Path]]]:
    """Finished super-resolution records under ``folder`` by upsampler (registry order), seeds ascending."""
    records: dict[str, list[ResultRecord]] = defaultdict(list)
    dirs: dict[str, list[Path]] = defaultdict(list)
    for found in sorted(collect_local(folder).runs, key=lambda c: (c.record.seed, c.record.run_id)):
        if found.record.task == "super_resolution" and found.record.status == "finished":
            records[found.record.upsampler].append(found.record)
            dirs[found.record.upsampler].append(found.run_dir)
    missing = [name for name in NEEDED if name not in records]
    if missing:
        raise UsageError(f"no finished super_resolution runs of {', '.join(missing)} under {folder}; run "
                         "recipes/run_grid.py --task super_resolution first")
    settings = {json.dumps([protocol_of(r), budget_of(r), r.dataset, r.image_size], sort_keys=True, default=str)
                for entries in records.values() for r in entries}
    if len(settings) > 1:
        raise UsageError(f"the super_resolution runs under {folder} were trained or measured in {len(settings)} "
                         "different ways; give each grid its own --runs folder")
    order = [name for name in list_upsamplers() if name in records] + sorted(set(records) - set(list_upsamplers()))
    return {name: records[name] for name in order}, {name: dirs[name] for name in order}


def heldout_images(record: ResultRecord) -> torch.Tensor:
    """The run's held-out high-resolution images, rebuilt from its recorded settings."""
    config, protocol = record.config, record.protocol
    if protocol.get("heldout_photos"):
        datamodule = HeldoutPhotosDataModule(record.image_size, config["batch_size"], config["data_seed"],
                                             heldout_photos=protocol["heldout_photos"].split(","),
                                             heldout_samples=config["eval_samples"])
    else:
        datamodule = ImageDataModule(record.dataset, image_size=record.image_size, batch_size=config["batch_size"],
                                     seed=config["data_seed"], heldout_samples=config["eval_samples"])
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule.heldout_images()


def load_task(run_dir: Path) -> SuperResolutionTask:
    """The trained network of a run, read weights-only from its ``checkpoints/last.ckpt``."""
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    task = SuperResolutionTask(**checkpoint["hyper_parameters"])
    task.load_state_dict(checkpoint["state_dict"])
    return task.eval()


def _worst_patch(error: torch.Tensor) -> tuple[int, int]:
    """Top-left corner of the ``PATCH``-pixel square (on a ``PATCH // 2`` grid) with the largest squared error."""
    energy = torch.nn.functional.avg_pool2d(error.square().sum(0, keepdim=True)[None], PATCH, stride=PATCH // 2)[0, 0]
    row, col = divmod(int(energy.argmax()), energy.shape[-1])
    return row * PATCH // 2, col * PATCH // 2


#: How much the error pictures amplify output − high resolution (one gain for every row).
ERROR_GAIN = 8


def plot(hr: torch.Tensor, outputs: dict[str, torch.Tensor], titles: dict[str, str]) -> bytes:
    """PNG bytes: a row per image (high resolution, bicubic, each upsampler in its colour); the whole crop,
    its patch where bicubic errs most at ×4, and the error against the high-resolution patch ×8 at ×4.

    Nothing is resampled: the crop at its own size, the patch as 4×4 blocks. The error pictures share
    one gain around mid-grey, so their amplitudes compare; a grid pattern in the error is the pattern
    an upsampler added.
    """
    import numpy as np

    from lightning_checkerboard.leaderboard.figures import panel_figure

    top, left = _worst_patch(outputs["bicubic"] - hr)
    as_uint8 = lambda image: (image.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # noqa: E731
    patch = lambda image: image[:, top:top + PATCH, left:left + PATCH]  # noqa: E731
    rows, labels, styles = [], [], []
    for name, image in [("high resolution", hr), *outputs.items()]:
        error = (patch(image) - patch(hr)) * ERROR_GAIN + 0.5
        rows.append([as_uint8(image), as_uint8(patch(image)), as_uint8(error)])
        labels.append(titles.get(name, name).replace("\n", " · "))
        styles.append(name if name in list_upsamplers() else None)
    return panel_figure(
        rows, zoom=[1, ZOOM, ZOOM], row_labels=labels, row_styles=styles,
        column_labels=["crop", f"patch ×{ZOOM}", f"error ×{ERROR_GAIN}"],
        title="Super-resolution ×2 on one held-out crop",
        note=(f"The patch (rows {top}–{top + PATCH - 1}, columns {left}–{left + PATCH - 1}) is where bicubic errs most;"
              f"\nerror: (image − high resolution) × {ERROR_GAIN} around mid-grey, the same gain in every row. "
              "No resampling."))


def _grid_inputs(folder: Path) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, str]]:
    """``plot``'s inputs from a leaderboard folder's copied sample grids (its super-resolution table, the
    first seed of each upsampler): the sample bicubic errs most on, its high resolution, bicubic and outputs."""
    from lightning_checkerboard._untrusted import open_image
    from lightning_checkerboard.leaderboard.thumbnails import MAX_PICTURE_PIXELS, grid_samples

    try:
        board = json.loads((folder / "leaderboard.json").read_text())
        table = next(t for t in board["tables"] if t["task"] == "super_resolution")
    except (OSError, ValueError, KeyError, StopIteration) as err:
        raise UsageError(f"--grids {folder}: no leaderboard.json with a super-resolution table ({err})") from None
    tensor = lambda a: torch.from_numpy(a.copy()).permute(2, 0, 1).float() / 255  # noqa: E731
    hr, outputs, titles, index = None, {}, {}, None
    for row in table["rows"]:
        run_id = row["run_ids"][row["seeds"].index(min(row["seeds"]))]
        with open_image(folder / "assets" / run_id / "final.png", root=folder, max_pixels=MAX_PICTURE_PIXELS) as image:
            samples = grid_samples(image.convert("RGB"), "super_resolution", int(table["image_size"]))
        if index is None:
            errors = [float(((b - t) ** 2).mean()) for b, t in zip(samples["bicubic"], samples["target"])]
            index = errors.index(max(errors))
            hr, outputs["bicubic"] = tensor(samples["target"][index]), tensor(samples["bicubic"][index])
            titles["bicubic"] = f"bicubic · {row['metrics']['psnr_bicubic']['mean']:.2f} dB"
        outputs[row["upsampler"]] = tensor(samples["output"][index])
        titles[row["upsampler"]] = f"{row['upsampler']} · {row['metrics']['psnr']['mean']:.2f} dB"
    if hr is None:
        raise UsageError(f"--grids {folder}: its super-resolution table has no rows")
    return hr, outputs, titles


def _markdown(runs: dict[str, list[dict]], first: ResultRecord, found: list[dict], info: dict[str, str]) -> str:
    config, protocol = first.config, first.protocol
    lines = [
        "# Super-resolution: every upsampler against bicubic, and the patterns it leaves", "",
        f"Generated by `{info['command']}`; do not edit by hand.", "",
        f"`recipes/super_resolution.py` default runs: ×{protocol['scale']} from {first.image_size // protocol['scale']}² "
        f"to {first.image_size}² `{first.dataset}` crops, an ESPCN-style network (features {config['features']}, "
        f"hidden {config['hidden_channels']}, {config['activation']}, bicubic residual {config['residual']}) with each "
        f"registered upsampler as its output layer, {config['loss']} loss, Adam {config['lr']}, {first.max_steps} "
        f"iterations of batch {config['batch_size']}. Measured on {protocol['fidelity_samples']} held-out crops of "
        f"photographs never trained on ({protocol.get('heldout_photos') or 'the dataset split'}): PSNR and SSIM on "
        f"BT.601 luma with a {protocol['fidelity_border']}-pixel border cropped; checkerboard scores in 8-bit levels "
        "of the outputs and of their error (output − target), > 0 only for a grid pattern above the measurement's "
        "noise, with the 95 % bound. \"Untrained\" is the network before its first step.", "",
        "## Answers", "", "| question | measured | holds |", "| --- | --- | --- |",
        *(f"| {a['question']} | {a['answer']} | {'yes' if a['holds'] else '**no**'} |" for a in found), "",
        "## Per upsampler (mean ± std over seeds)", "",
        "| upsampler | runs | PSNR (dB) | above bicubic (dB) | SSIM | residual checkerboard | output checkerboard | "
        "untrained output checkerboard | untrained PSNR (dB) |", "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entries in runs.items():
        bound = max(_values(entries, "residual_checkerboard_upper"))
        lines.append(f"| `{name}` | {len(entries)} | {_cell(entries, 'psnr')} | {_cell(entries, 'gain_db')} | "
                     f"{_cell(entries, 'ssim', 4)} | {_cell(entries, 'residual_checkerboard')} (< {bound:.2f}) | "
                     f"{_cell(entries, 'checkerboard')} | {_cell(entries, 'untrained_checkerboard')} | "
                     f"{_cell(entries, 'untrained_psnr', 2)} |")
    first_runs = next(iter(runs.values()))
    lines += ["", f"Bicubic: PSNR {first_runs[0]['psnr_bicubic']:.3f} dB, SSIM {first_runs[0]['ssim_bicubic']:.4f} "
              "(the same held-out crops for every run).", "", "## Every run", "",
              "| upsampler | seed | PSNR | SSIM | residual checkerboard (bound) | output checkerboard (bound) | "
              "untrained output checkerboard (bound) | train s | run |", "|---|---|---|---|---|---|---|---|---|"]
    for name, entries in runs.items():
        for r in entries:
            lines.append(f"| `{name}` | {r['seed']} | {r['psnr']:.3f} | {r['ssim']:.4f} | "
                         f"{r['residual_checkerboard']:.3f} ({r['residual_checkerboard_upper']:.2f}) | "
                         f"{r['checkerboard']:.3f} ({r['checkerboard_upper']:.2f}) | "
                         f"{r['untrained_checkerboard']:.3f} ({r['untrained_checkerboard_upper']:.2f}) | "
                         f"{r['train_seconds']:.0f} | `{r['run_id']}` |")
    lines += ["", "![high resolution, bicubic and every upsampler on one held-out crop](figures/super_resolution.png)",
              "", "- train seconds as each run recorded them (`recipes/run_grid.py --jobs 2`: two runs side by side, "
              "one compute thread each)", f"- report made on: {info['machine']}", f"- date: {info['date']}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="recipes/reports/super_resolution_report.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="folder holding super_resolution/ run directories")
    parser.add_argument("--out", type=Path, default=Path("leaderboards"), help="folder for the report and figures/")
    parser.add_argument("--grids", type=Path, default=None, metavar="LEADERBOARD",
                        help="measure nothing: redraw only figures/super_resolution.png from this leaderboard "
                             "folder's copied sample grids (when the runs are gone)")
    args = parser.parse_args(argv)
    if args.grids is not None:
        path = args.out / "figures" / "super_resolution.png"
        atomic_write_bytes(path, plot(*_grid_inputs(args.grids)))
        print(f"wrote {path} from the sample grids in {args.grids} (nothing measured)")
        return 0
    records, dirs = load_runs(args.runs)
    runs = {name: [run_numbers(r) for r in entries] for name, entries in records.items()}
    found = answers(runs)
    first = records[NEEDED[0]][0]
    hr_all = heldout_images(first)
    scale = first.protocol["scale"]
    task = load_task(dirs[NEEDED[0]][0])
    lr_all = task.degrade(hr_all)
    index = int((task.bicubic(lr_all) - hr_all).square().mean(dim=(1, 2, 3)).argmax())  # the hardest crop
    hr, lr = hr_all[index], lr_all[index : index + 1]
    outputs = {"bicubic": task.bicubic(lr)[0]}
    titles = {"bicubic": f"bicubic\n{first.metrics['psnr_bicubic']:.2f} dB"}
    for name in records:
        outputs[name] = load_task(dirs[name][0]).super_resolve(lr)[0]
        titles[name] = f"{name}\n{mean_std(_values(runs[name], 'psnr'))[0]:.2f} dB"
    (args.out / "figures").mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "figures" / "super_resolution.png", plot(hr, outputs, titles))
    info = provenance("recipes/reports/super_resolution_report.py", ["--runs", str(args.runs), "--out", str(args.out)])
    atomic_write_text(args.out / "super_resolution.md", _markdown(runs, first, found, info))
    atomic_write_json(args.out / "super_resolution.json", {
        **info, "scale": scale, "image_size": first.image_size, "max_steps": first.max_steps,
        "dataset": first.dataset, "heldout_photos": first.protocol.get("heldout_photos"),
        "fidelity_samples": first.protocol["fidelity_samples"], "figure_crop": index,
        "answers": found, "runs": runs,
        "summary": {name: {key: mean_std(_values(entries, key)) for key in entries[0]
                           if all(isinstance(run[key], float) for run in entries)} for name, entries in runs.items()},
    })
    for answer in found:
        print(f"{answer['question']} {'yes' if answer['holds'] else 'no'}: {answer['answer']}")
    print(f"wrote {args.out / 'super_resolution.md'}, super_resolution.json and figures/super_resolution.png")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
