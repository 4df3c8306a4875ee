"""Each claim of "Deconvolution and Checkerboard Artifacts" beside the number this project measures for it.

    python recipes/reports/init_probe.py && python recipes/reports/gradient_probe.py    # the measurements
    python recipes/reports/article_report.py                                    # then this, in a second

Reads ``leaderboards/init.json`` and ``leaderboards/gradients.json`` (written by the probes; a
missing one is an error that names the command to run) and, when present, ``style_transfer.json``
(``recipes/reports/style_figure.py``), ``super_resolution.json`` (``recipes/reports/super_resolution_report.py``) and
``dysample_phases.json`` (``recipes/reports/dysample_phases.py``),
computes the overlap ratios itself (exact
integer counts, instant), and writes ``leaderboards/article.md``: one line per claim with the
measured number, whether it holds by the same predicates the tests in
``tests/test_article_claims.py`` use, and the command that produced the number.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard._io import atomic_write_text
from lightning_checkerboard.cli import UsageError, run_cli
from lightning_checkerboard.experiments import overlap_ratios
from lightning_checkerboard.reporting import far_above, format_mean_std, mean_std

#: "Reads 0": the checkerboard score's noise margin makes pattern-free stacks read exactly 0.00.
ZERO = 0.1
OVERLAP_COMMAND = "python recipes/reports/overlap_figures.py"
SR_COMMAND = ("python recipes/run_grid.py --task super_resolution --runs /tmp/lcb-sr --jobs 2 --no-build && "
              "python recipes/reports/super_resolution_report.py --runs /tmp/lcb-sr --out leaderboards")


def _load(folder: Path, name: str, command: str) -> dict:
    path = folder / name
    if not path.is_file():
        raise UsageError(f"{path} is missing; run `{command}` first")
    return json.loads(path.read_text(encoding="utf-8"))


def _verdict(holds: bool | str) -> str:
    if isinstance(holds, str):  # a qualified answer
        return holds
    return "yes" if holds else "**no**"


def _separated(high: list[float], low: list[float]) -> bool | str:
    """``True`` if far above (10×); "partly" if every seed is at least 2× every other; else ``False``."""
    if far_above(high, low):
        return True
    return "partly: every seed ≥ 2× apart, short of 10×" if far_above(high, low, factor=2.0) else False


def style_claim(style: dict) -> tuple[str, str, bool | str, str]:
    """The row of the style-transfer claim, from ``style_transfer.json`` (``recipes/reports/style_figure.py``)."""
    missing = [name for name in ("deconv", "nearest_conv") if not style.get("runs", {}).get(name)]
    if missing:
        raise UsageError(f"style_transfer.json has no {' or '.join(missing)} runs; rerun recipes/reports/style_figure.py "
                         "with --upsamplers deconv nearest_conv")
    deconv = [run["checkerboard"] for run in style["runs"]["deconv"]]
    resize = [run["checkerboard"] for run in style["runs"]["nearest_conv"]]
    return (
        "Fast style transfer with transposed convolutions leaves checkerboards; resize-convolution removes them",
        f"stylised held-out photos, {style['max_steps']} iterations at {style['image_size']}², loss network "
        f"`{style['loss_network']}`: deconv {format_mean_std(mean_std(deconv))}, nearest_conv "
        f"{format_mean_std(mean_std(resize))} levels ({len(deconv)} and {len(resize)} seeds, "
        "[style_transfer.md](style_transfer.md))",
        far_above(deconv, resize) and max(resize) < ZERO,
        "python recipes/run_grid.py --task style_transfer --upsamplers deconv nearest_conv && "
        "python recipes/reports/style_figure.py",
    )


def sr_claims(sr: dict) -> list[tuple[str, str, bool | str, str]]:
    """The super-resolution rows, from ``super_resolution.json`` (``recipes/reports/super_resolution_report.py``).

    The report decides each answer from the per-run numbers it also stores; these rows repeat it.
    """
    where = (f"(super-resolution ×{sr['scale']}, {sr['max_steps']} iterations at {sr['image_size']}², "
             f"{len(next(iter(sr['runs'].values())))} seeds, [super_resolution.md](super_resolution.md))")
    return [(f"(not the article's experiment) {answer['claim']}", f"{answer['answer']} {where}", answer["holds"],
             SR_COMMAND) for answer in sr["answers"]]


def dysample_claim(phases: dict) -> tuple[str, str, bool | str, str]:
    """The row of DySample's sampling grid, from ``dysample_phases.json`` (``recipes/reports/dysample_phases.py``)."""
    summary = phases["summary"]
    untrained = [v for name, entry in summary.items() if "untrained" in name for v in entry["largest_relative_spread"]]
    trained = {name: entry for name, entry in summary.items() if "trained" in name and "untrained" not in name}
    if not untrained or not trained:
        raise UsageError("dysample_phases.json has no untrained or no trained networks; rerun "
                         "recipes/reports/dysample_phases.py with --runs folders that hold dysample runs")
    per_task = []
    for name in trained:
        values = [f"{e['checkerboard']:.2f}" for e in phases["groups"][name] if e.get("checkerboard") is not None]
        if values:
            per_task.append(f"{name.split(',')[0]} {', '.join(values)}")
    scores = f"{'; '.join(per_task)} levels" if per_task else "not recorded"
    measured = (f"largest relative spread of the phases' mean offsets: untrained {max(untrained):.4f} at most; "
                + "; ".join(f"{name}: {format_mean_std(mean_std(entry['largest_relative_spread']), 3)}"
                            for name, entry in trained.items())
                + f"; those runs' output checkerboard: {scores} ([dysample_phases.md](dysample_phases.md))")
    return ("(not the article) Training makes DySample's offsets depend on the sub-pixel phase: its sampling grid "
            "starts even and turns uneven",
            measured, far_above([v for e in trained.values() for v in e["largest_relative_spread"]], untrained),
            phases["command"])


def claims(init: dict, grads: dict) -> list[tuple[str, str, bool | str, str]]:
    """The rows of the report: (claim, measured, holds, command)."""
    r1, r2 = overlap_ratios(ndim=1), overlap_ratios(ndim=2)
    cfg = init["configs"]

    def scores(label: str) -> list[float]:
        return [run["score"] for run in cfg[label]["runs"]]

    def summary(label: str, key: str = "score") -> str:
        return format_mean_std(cfg[label]["summary"][key])

    def amplitudes(label: str, period: int) -> list[float]:
        return [run[f"amplitude_period_{period}"] for run in cfg[label]["runs"]]

    deconv_like = ("all deconv_k3", "all deconv", "all pixel_shuffle")
    resize_like = ("all nearest_conv", "all bilinear_conv")
    last1, last2 = "deconv_k3 in the last stage", "deconv_k3 in the last two stages"
    init_cmd = init["command"]
    g_cmd = grads["command"]
    gu, gt = grads["untrained"], grads["trained"]

    def g_scores(entry: dict, key: int | str, name: str = "score") -> list[float]:
        return [run[name] for run in entry[str(key)]["runs"]]

    rows = [
        ("Kernel 3, stride 2 overlaps unevenly: twice as many paths in 1-D, four times in 2-D",
         f"max/min {r1[3, 1]:g} (1-D), {r2[3, 1]:g} (2-D); kernel 5: {r1[5, 1]:g}, {r2[5, 1]:g}",
         r1[3, 1] == 2 and r2[3, 1] == 4 and r2[5, 1] > 1, OVERLAP_COMMAND),
        ("A kernel divisible by the stride overlaps evenly, through any stack",
         "kernel 4, 1–3 layers, 2-D max/min: " + ", ".join(f"{r2[4, n]:g}" for n in (1, 2, 3)),
         all(r2[4, n] == 1 for n in (1, 2, 3)), OVERLAP_COMMAND),
        ("Stacked uneven deconvolutions compound the pattern",
         "kernel 3, 1–3 layers, 2-D max/min: " + ", ".join(f"{r2[3, n]:g}" for n in (1, 2, 3)),
         r2[3, 1] < r2[3, 2] < r2[3, 3], OVERLAP_COMMAND),
        ("Checkerboards appear before training, in generators with uneven-overlap deconvolutions",
         f"all deconv_k3: {summary('all deconv_k3')} levels", far_above(scores("all deconv_k3"), scores("all nearest_conv")),
         init_cmd),
        ("Even overlap is no cure: the weights still give output phases unequal gains",
         f"all deconv (kernel 4): {summary('all deconv')} levels", far_above(scores("all deconv"), scores("all nearest_conv")),
         init_cmd),
        ("Sub-pixel convolution is a deconvolution and has the same artifacts",
         f"all pixel_shuffle: {summary('all pixel_shuffle')} levels",
         far_above(scores("all pixel_shuffle"), scores("all nearest_conv")), init_cmd),
        ("Nearest-neighbour resize, then convolution, has none",
         f"all nearest_conv: {summary('all nearest_conv')} levels", max(scores("all nearest_conv")) < ZERO, init_cmd),
        ("Bilinear resize, then convolution, has none either",
         f"all bilinear_conv: {summary('all bilinear_conv')} levels", max(scores("all bilinear_conv")) < ZERO, init_cmd),
        ("Every deconv/sub-pixel stack reads far above every resize-convolution stack",
         "lowest deconv-like seed {:.2f} vs highest resize seed {:.2f} levels".format(
             min(s for c in deconv_like for s in scores(c)), max(s for c in resize_like for s in scores(c))),
         far_above([s for c in deconv_like for s in scores(c)], [s for c in resize_like for s in scores(c)]), init_cmd),
        ("Deconvolution in the last layer only: artifacts at the highest frequency (period 2), not below",
         f"period 2: {summary(last1, 'amplitude_period_2')}, period 4: {summary(last1, 'amplitude_period_4')} levels",
         far_above(amplitudes(last1, 2), amplitudes(last1, 4)), init_cmd),
        ("Deconvolution in the last two layers: artifacts at periods 2 and 4",
         f"period 2: {summary(last2, 'amplitude_period_2')}, period 4: {summary(last2, 'amplitude_period_4')} levels",
         far_above(amplitudes(last2, 4), amplitudes(last1, 4)) and min(amplitudes(last2, 2)) > 1.0, init_cmd),
        ("(Aitken et al. 2017, not the article) ICNR-initialised sub-pixel convolution starts pattern-free",
         f"all pixel_shuffle_icnr: {summary('all pixel_shuffle_icnr')} levels",
         max(scores("all pixel_shuffle_icnr")) < ZERO, init_cmd),
        ("(this project's filtered variant) a fixed [1, 2, 1] blur after the deconvolution removes it",
         f"all deconv_blur: {summary('all deconv_blur')} levels", max(scores("all deconv_blur")) < ZERO, init_cmd),
        ("A stride-2 first layer puts checkerboards into the discriminator's input gradient; stride 1 does not "
         "(DCGAN's 4×4, stride 2: even overlap; signed gradient, untrained)",
         f"share of gradient RMS: stride 2 {format_mean_std(gu['2']['summary']['score'], 3)}, stride 1 "
         f"{format_mean_std(gu['1']['summary']['score'], 3)}", far_above(g_scores(gu, 2), g_scores(gu, 1)), g_cmd),
        (f"The same after {grads['steps']} GAN iterations",
         f"share of gradient RMS: stride 2 {format_mean_std(gt['2']['summary']['score'], 3)}, stride 1 "
         f"{format_mean_std(gt['1']['summary']['score'], 3)}", far_above(g_scores(gt, 2), g_scores(gt, 1)), g_cmd),
    ]
    if {"all dysample", "all carafe", "all bilinear_additive"} <= set(cfg):  # init.json with the newer layers
        lowest_deconv = min(s for c in deconv_like for s in scores(c))
        rows += [
            ("(Liu et al. 2023, not the article) DySample starts pattern-free: untrained, it samples where bilinear "
             "upsampling does", f"all dysample: {summary('all dysample')} levels",
             max(scores("all dysample")) < ZERO, init_cmd),
            ("(Wang et al. 2019, not the article) CARAFE starts far below every deconvolution stack: untrained, each "
             "stage is nearest upsampling of a box average (every 2×2 block one value), which the score reads as 0 at "
             "period 2; a tenth of a level remains at period 4",
             f"all carafe: {summary('all carafe')} levels; lowest deconv-like seed {lowest_deconv:.2f}",
             far_above([s for c in deconv_like for s in scores(c)], scores("all carafe")), init_cmd),
            ("(Wojna et al. 2019, not the article) Bilinear additive upsampling, then a convolution, has none",
             f"all bilinear_additive: {summary('all bilinear_additive')} levels",
             max(scores("all bilinear_additive")) < ZERO, init_cmd),
        ]
    if "2k3" in gu and "2k3" in gt:  # gradients.json from the probe with the 3×3, stride-2 first layer
        for phase, entry in (("untrained", gu), (f"after {grads['steps']} GAN iterations", gt)):
            rows.append((
                f"With uneven overlap (3×3, stride 2) the first layer checkers the gradient's energy; stride 1 "
                f"does not ({phase})",
                f"share of energy RMS: 3×3 stride 2 {format_mean_std(entry['2k3']['summary']['energy_score'], 3)}, "
                f"stride 1 {format_mean_std(entry['1']['summary']['energy_score'], 3)}; "
                + _factors(g_scores(entry, "2k3", "energy_score"), g_scores(entry, 1, "energy_score")),
                _separated(g_scores(entry, "2k3", "energy_score"), g_scores(entry, 1, "energy_score")), g_cmd))
    return rows


def _factors(high: list[float], low: list[float], floor: float = 1e-3) -> str:
    """How far apart two sets of seeds are: the ratio of means and of the closest seeds (floored)."""
    means = (sum(high) / len(high)) / max(sum(low) / len(low), floor)
    closest = min(high) / max(max(low), floor)
    return f"{means:.1f}× in the mean, {closest:.1f}× lowest seed over highest"


def _rows(init: dict, grads: dict, style: dict | None, sr: dict | None,
          phases: dict | None = None) -> list[tuple[str, str, bool | str, str]]:
    return (claims(init, grads) + ([style_claim(style)] if style is not None else [])
            + (sr_claims(sr) if sr is not None else []) + ([dysample_claim(phases)] if phases is not None else []))


def render(init: dict, grads: dict, style: dict | None = None, sr: dict | None = None,
           phases: dict | None = None) -> str:
    """The markdown of ``leaderboards/article.md`` (with the style-transfer, super-resolution and DySample rows
    when given)."""
    rows = _rows(init, grads, style, sr, phases)
    lines = [
        "# The article's claims, measured",
        "",
        'Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts", Distill 2016. Generated by '
        "`python recipes/reports/article_report.py` from [`init.json`](init.json) and [`gradients.json`](gradients.json) "
        "(rerun the commands in the last column to refresh them); do not edit by hand.",
        "",
        f"Init numbers: checkerboard score in 8-bit levels, mean ± std over {init['seeds']} seeds × "
        f"{init['samples']} samples of untrained DCGAN generators at {init['image_size']}² ([init.md](init.md)). "
        f"Gradient numbers: share of the input gradient's RMS in grid patterns ([gradients.md](gradients.md)). "
        f"\"Holds\" uses the predicates of `tests/test_article_claims.py`: far above = every seed more than "
        f"10× every seed of the other side (floored at 0.001); none = every seed below {ZERO} levels; "
        f"\"partly\" = every seed at least 2× every seed of the other side, short of 10×.",
        "",
        "| claim | measured | holds | command |",
        "| --- | --- | --- | --- |",
    ]
    for claim, measured, holds, command in rows:
        lines.append(f"| {claim} | {measured} | {_verdict(holds)} | `{command}` |")
    lines += [
        "",
        "Figures: [overlap 1-D](figures/overlap_1d.png), [overlap 2-D](figures/overlap_2d.png), "
        "[untrained samples](figures/init_samples.png)"
        + (", [style transfer](figures/style_transfer.png)" if style is not None else "")
        + (", [super-resolution](figures/super_resolution.png)" if sr is not None else "") + ".",
        "",
        f"- init probe: {init['machine']}, {init['date']}, {init['runtime_s']:.1f} s",
        f"- gradient probe: {grads['machine']}, {grads['date']}, {grads['runtime_s']:.0f} s",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="recipes/reports/article_report.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("leaderboards"),
                        help="folder with init.json and gradients.json; article.md is written there")
    args = parser.parse_args(argv)
    init = _load(args.dir, "init.json", "python recipes/reports/init_probe.py")
    grads = _load(args.dir, "gradients.json", "python recipes/reports/gradient_probe.py")
    style_path = args.dir / "style_transfer.json"
    style = json.loads(style_path.read_text(encoding="utf-8")) if style_path.is_file() else None
    sr_path = args.dir / "super_resolution.json"
    sr = json.loads(sr_path.read_text(encoding="utf-8")) if sr_path.is_file() else None
    phases_path = args.dir / "dysample_phases.json"
    phases = json.loads(phases_path.read_text(encoding="utf-8")) if phases_path.is_file() else None
    path = atomic_write_text(args.dir / "article.md", render(init, grads, style, sr, phases))
    rows = _rows(init, grads, style, sr, phases)
    print(f"wrote {path}: {sum(holds is True for _, _, holds, _ in rows)} of {len(rows)} claims hold, "
          f"{sum(isinstance(holds, str) for _, _, holds, _ in rows)} in part")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:]))
