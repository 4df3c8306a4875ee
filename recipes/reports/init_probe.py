"""Checkerboards before training: untrained DCGAN generators, one per upsampler configuration.

    python recipes/reports/init_probe.py                 # under 2 minutes on a 2-core CPU
    python recipes/reports/init_probe.py --seeds 20 --samples 512

For every configuration of :func:`~lightning_checkerboard.experiments.init_configs` (uniform stacks
of each layer, and ``deconv_k3`` in only the last one or two stages, the article's mixed figure)
this builds freshly initialised generators (DCGAN init, BatchNorm in training mode) over several
seeds, generates a batch from each, and reports the checkerboard score with the amplitude and PNR
at every period, mean ± std over seeds. Writes ``leaderboards/init.md``, ``leaderboards/init.json``
(read by ``recipes/reports/article_report.py``) and ``leaderboards/figures/init_samples.png`` (the
first samples of each configuration in a row, every pixel a 2×2 block, one contrast stretch for all so
amplitudes compare). ``--from-json`` measures nothing: it redraws the figure and rewrites ``init.md``
from the ``init.json`` an earlier run wrote.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from torch import Tensor

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard._io import atomic_write_bytes, atomic_write_json, atomic_write_text
from lightning_checkerboard.cli import UsageError, positive_int, run_cli
from lightning_checkerboard.experiments import checkerboard_diagnostics, init_configs, untrained_samples
from lightning_checkerboard.reporting import format_mean_std, provenance, summarize, summary_cells
from lightning_checkerboard.models import num_stages_for

#: Samples per column of the figure; few enough to keep every pixel of a 32² sample visible.
FIGURE_ROWS = 3


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="recipes/reports/init_probe.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seeds", type=positive_int, default=10, help="generators per configuration")
    parser.add_argument("--samples", type=positive_int, default=256,
                        help=f"images per generator (at least {FIGURE_ROWS}, the figure's rows)")
    parser.add_argument("--image-size", type=positive_int, default=32, help="32 … 256, a power of two")
    parser.add_argument("--base-channels", type=positive_int, default=32, help="generator width (DCGAN ngf)")
    parser.add_argument("--out", type=Path, default=Path("leaderboards"), help="folder for init.md/.json and figures/")
    parser.add_argument("--from-json", action="store_true",
                        help="measure nothing: redraw figures/init_samples.png from seed 0's samples and rewrite "
                             "init.md from --out/init.json")
    return parser


#: Every pixel of a sample becomes a ZOOM×ZOOM block: an integer zoom, so no pixel is drawn wider than another.
ZOOM = 2


def _uniform_layer(spec: str) -> str | None:
    """The layer a configuration uses everywhere (its colour marks the row); ``None`` for a mixed stack."""
    stages = set(spec.split(","))
    return stages.pop() if len(stages) == 1 else None


def plot_sample_columns(columns: Mapping[str, Tensor], specs: Mapping[str, str] | None = None,
                        scores: Mapping[str, str] | None = None) -> bytes:
    """PNG bytes of sample images, one labelled row per configuration, every pixel a ``ZOOM``-pixel block.

    Every image is centred on its own mean and all of them share one contrast stretch, so a
    configuration whose pattern is 60 times fainter looks 60 times fainter: each row's label gives
    its measured score.

    Args:
        columns: label → ``(rows, 3, H, W)`` images in [0, 1]; every entry the same shape.
        specs: label → the configuration's spec (its upsampler's colour marks the row).
        scores: label → its score text (``"14.2 ± 1.8 levels"``), shown after the label.
    """
    from lightning_checkerboard.leaderboard.figures import panel_figure, shared_stretch

    labels = list(columns)
    flat = [image.permute(1, 2, 0).numpy() for label in labels for image in columns[label]]
    stretched, gain = shared_stretch(flat)
    per_row = len(flat) // max(len(labels), 1)
    rows = [stretched[i * per_row:(i + 1) * per_row] for i in range(len(labels))]
    specs, scores = specs or {}, scores or {}
    return panel_figure(
        rows, zoom=ZOOM, row_labels=[f"{label} · {scores[label]}" if label in scores else label for label in labels],
        row_styles=[_uniform_layer(specs[label]) if label in specs else None for label in labels],
        title="Untrained generators, seed 0: the first samples of each configuration",
        note=(f"Pixels drawn as {ZOOM}×{ZOOM} blocks. One contrast stretch for every image (×{gain:.1f} about "
              "its own mean),\nso faint patterns look faint; scores are the checkerboard in 8-bit levels, "
              "mean ± std over seeds."))


def _markdown(results: dict, command: str) -> str:
    periods = results["periods"]
    lines = [
        "# Checkerboards before training",
        "",
        "Generated by `" + command + "`; do not edit by hand.",
        "",
        f"Untrained DCGAN generators at {results['image_size']}² ({results['stages']} stride-2 stages from 4×4, "
        f"width {results['base_channels']}, DCGAN init, BatchNorm in training mode), {results['seeds']} seeds × "
        f"{results['samples']} samples per configuration. Checkerboard score in 8-bit levels (RMS of the grid "
        "pattern), its amplitude at each period (squares add up to the score's) and the peak-to-reference "
        "ratio per period in dB; mean ± std over seeds. Stages are listed from 4×4 outwards.",
        "",
        "| configuration | stages | score | " + " | ".join(f"period {p}" for p in periods) + " | "
        + " | ".join(f"PNR {p} (dB)" for p in periods) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in periods * 2) + " |",
    ]
    for label, entry in results["configs"].items():
        s = entry["summary"]
        lines.append(
            f"| {label} | `{entry['spec']}` | {summary_cells(s, periods)} |"
        )
    lines += [
        "",
        f"![samples of untrained generators, one row per configuration](figures/{results['figure']})",
        "",
        "The figure: the first images of seed 0's measured batch, every pixel a 2×2 block, all with one contrast "
        "stretch about their own means, so faint patterns look faint.",
        "",
        f"- machine: {results['machine']}",
        f"- date: {results['date']}; runtime {results['runtime_s']:.1f} s from the start of `main` (Python and torch imports, a few seconds more, excluded; goal: under 120 s on a 2-core CPU)",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        stages = num_stages_for(args.image_size)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.samples < FIGURE_ROWS:
        raise UsageError(f"--samples must be at least {FIGURE_ROWS}; got {args.samples}")
    if stages < 3:
        raise UsageError(f"--image-size must be at least 32 (the mixed stacks need three stages); got {args.image_size}")
    start = time.perf_counter()
    periods = [2 ** (level + 1) for level in range(stages)]
    sizes = {"num_samples": args.samples, "image_size": args.image_size, "base_channels": args.base_channels}
    configs: dict[str, dict] = {}
    columns: dict[str, Tensor] = {}
    if args.from_json:
        return _from_json(args, stages, sizes)
    for label, spec in init_configs(stages).items():
        runs = []
        for seed in range(args.seeds):
            images = untrained_samples(spec, seed=seed, **sizes)
            runs.append(checkerboard_diagnostics(images, stages))
            if seed == 0:
                # Cut from the measured batch: BatchNorm in training mode makes a sample depend on its batch.
                columns[label] = images[:FIGURE_ROWS]
        configs[label] = {"spec": spec, "runs": runs, "summary": summarize(runs)}
        print(f"{label:<34} score {format_mean_std(configs[label]['summary']['score'])}", flush=True)

    figure = "init_samples.png"
    specs = {label: entry["spec"] for label, entry in configs.items()}
    scores = {label: f"{format_mean_std(entry['summary']['score'], 1)} levels" for label, entry in configs.items()}
    atomic_write_bytes(args.out / "figures" / figure, plot_sample_columns(columns, specs, scores))
    results = {
        "image_size": args.image_size, "stages": stages, "base_channels": args.base_channels, "seeds": args.seeds,
        "samples": args.samples, "periods": periods, "configs": configs, "figure": figure,
        "runtime_s": time.perf_counter() - start, **provenance("recipes/reports/init_probe.py", argv),
    }
    atomic_write_json(args.out / "init.json", results)
    atomic_write_text(args.out / "init.md", _markdown(results, results["command"]))
    print(f"wrote {args.out / 'init.md'}, init.json and figures/{figure} in {results['runtime_s']:.1f} s")
    return 0


def _from_json(args: argparse.Namespace, stages: int, sizes: dict) -> int:
    """Redraw the figure from the same seed-0 batches and rewrite init.md from ``--out/init.json``."""
    import json

    try:
        results = json.loads((args.out / "init.json").read_text())
        measured = results["configs"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UsageError(f"--from-json needs {args.out / 'init.json'} from an earlier run ({err})") from None
    columns, specs, scores = {}, {}, {}
    for label, spec in init_configs(stages).items():
        columns[label], specs[label] = untrained_samples(spec, seed=0, **sizes)[:FIGURE_ROWS], spec
        entry = measured.get(label) if isinstance(measured, dict) else None
        if isinstance(entry, dict) and entry.get("spec") == spec:
            scores[label] = f"{format_mean_std(entry['summary']['score'], 1)} levels"
    path = args.out / "figures" / "init_samples.png"
    atomic_write_bytes(path, plot_sample_columns(columns, specs, scores))
    atomic_write_text(args.out / "init.md", _markdown(results, results["command"]))
    print(f"wrote {path} and {args.out / 'init.md'} (from init.json; nothing measured)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:]))
