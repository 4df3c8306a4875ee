"""Forward+backward speed of every registered upsampler, as a ratio to ``deconv`` in the same run.

Usage:
    python recipes/benchmarks/bench_upsamplers.py                 # CPU, and CUDA when present
    python recipes/benchmarks/bench_upsamplers.py --repeats 3 --out leaderboards/speed.md

Every variant is timed in interleaved rounds (the order rotates each round, so drift and
thermal effects hit all variants alike); a variant's figure is the median over rounds of its
time divided by ``deconv``'s time in the same round. The resize-conv layers are timed on both
their fused and reference paths. The layers newer than the article (``dysample``, ``carafe``,
``bilinear_additive``) get a second table: their time over fused ``nearest_conv``'s in the same
round, the resize-convolution they would replace.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard import __version__, create_upsampler, list_upsamplers

# (batch, in_channels, out_channels, input size): the stages of a DCGAN-64 generator's upper half.
SHAPES = [(64, 256, 128, 16), (64, 128, 64, 32), (16, 64, 3, 64)]
# Layers with two exact implementations: both are timed, labelled by path.
TWO_PATHS = {"nearest_conv": ("fused", "reference"), "bilinear_conv": ("fused", "reference")}
BASELINE = "deconv"
#: The reference of the newer layers' table, and the layers it lists.
RESIZE_BASELINE = "nearest_conv (fused)"
MODERN = ("dysample", "carafe", "bilinear_additive")


def _variants() -> list[tuple[str, dict]]:
    variants = []
    for name in list_upsamplers():
        variants += [(name, {"impl": impl}) for impl in TWO_PATHS.get(name, ())] or [(name, {})]
    return variants


def _label(name: str, options: dict) -> str:
    return f"{name} ({options['impl']})" if options else name


def _make_step(name: str, options: dict, shape: tuple[int, int, int, int], device: torch.device) -> Callable[[], None]:
    batch, c_in, c_out, size = shape
    torch.manual_seed(0)
    layer = create_upsampler(name, c_in, c_out, **options).to(device)
    x = torch.randn(batch, c_in, size, size, device=device, requires_grad=True)

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x).square().mean().backward()

    return step


def _time(step: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def bench_shape(shape, device: torch.device, repeats: int) -> dict[str, tuple[float, float, float]]:
    """``{label: (median ratio to deconv, median seconds, median ratio to fused nearest_conv)}`` for one shape."""
    variants = _variants()
    steps = {_label(n, o): _make_step(n, o, shape, device) for n, o in variants}
    labels = list(steps)
    for label in labels:  # warm-up: allocator, kernel selection, lazy init
        _time(steps[label], device)
    seconds: dict[str, list[float]] = {label: [] for label in labels}
    ratios: dict[str, list[float]] = {label: [] for label in labels}
    resize_ratios: dict[str, list[float]] = {label: [] for label in labels}
    for round_ in range(repeats):
        shift = round_ % len(labels)
        order = labels[shift:] + labels[:shift]
        times = {label: _time(steps[label], device) for label in order}
        for label in labels:
            seconds[label].append(times[label])
            ratios[label].append(times[label] / times[BASELINE])
            resize_ratios[label].append(times[label] / times[RESIZE_BASELINE])
    return {
        label: (statistics.median(ratios[label]), statistics.median(seconds[label]), statistics.median(resize_ratios[label]))
        for label in labels
    }


def _shape_name(shape) -> str:
    batch, c_in, c_out, size = shape
    return f"{batch}×{c_in}→{c_out}, {size}²"


def render(results: dict[str, dict], repeats: int) -> str:
    lines = [
        "# Upsampler speed",
        "",
        "Forward + backward of one layer, as a ratio to `deconv` timed in the same interleaved",
        f"rounds (median of {repeats} rounds; lower is faster). Regenerate with",
        "`python recipes/benchmarks/bench_upsamplers.py`.",
        "",
        f"- date: {dt.date.today().isoformat()}; lightning-checkerboard {__version__}; torch {torch.__version__};"
        f" Python {platform.python_version()}",
    ]
    for device_name, per_shape in results.items():
        lines.append(f"- {device_name}")
    for device_name, per_shape in results.items():
        shapes = list(per_shape)
        lines += ["", f"## {device_name}", ""]
        lines.append("| upsampler | " + " | ".join(_shape_name(s) for s in shapes) + " |")
        lines.append("|---|" + "---:|" * len(shapes))
        for label in per_shape[shapes[0]]:
            cells = [f"{per_shape[s][label][0]:.2f}× ({per_shape[s][label][1] * 1e3:.1f} ms)" for s in shapes]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        modern = [label for label in per_shape[shapes[0]] if label in MODERN]
        if modern:
            lines += ["", f"Layers newer than the article, as a ratio to `{RESIZE_BASELINE}` in the same rounds:", ""]
            lines.append("| upsampler | " + " | ".join(_shape_name(s) for s in shapes) + " |")
            lines.append("|---|" + "---:|" * len(shapes))
            for label in modern:
                cells = [f"{per_shape[s][label][2]:.2f}×" for s in shapes]
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += ["", "Goals:", ""]
        for s in shapes:
            fused = per_shape[s]["nearest_conv (fused)"][0]
            ref_over_fused = per_shape[s]["nearest_conv (reference)"][1] / per_shape[s]["nearest_conv (fused)"][1]
            bil = per_shape[s]["bilinear_conv (reference)"][1] / per_shape[s]["bilinear_conv (fused)"][1]
            lines.append(
                f"- {_shape_name(s)}: fused `nearest_conv` = {fused:.2f}× `deconv` (goal ≤ 1.10); "
                f"reference / fused = {ref_over_fused:.2f}× (goal ≥ 2 at the two larger shapes); "
                f"`bilinear_conv` reference / fused = {bil:.2f}× (the faster path is its default)"
            )
    return "\n".join(lines) + "\n"


def _device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    return f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads ({os.cpu_count()} cores)"


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timing rounds per shape (default 5)")
    parser.add_argument("--devices", default="auto", help="'auto' (CPU, plus CUDA when present), 'cpu' or 'cuda'")
    parser.add_argument("--out", type=Path, default=Path("leaderboards/speed.md"), help="markdown report to write")
    parser.add_argument("--quick", action="store_true", help="batch 4 instead of the full shapes: a smoke run")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1; got {args.repeats}")
    if args.devices not in ("auto", "cpu", "cuda"):
        parser.error(f"--devices must be auto, cpu or cuda; got {args.devices!r}")
    if args.devices == "cuda" and not torch.cuda.is_available():
        parser.error("--devices cuda: no CUDA device is available")

    devices = [torch.device("cpu")] if args.devices != "cuda" else []
    if args.devices in ("auto", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    shapes = [(4 if args.quick else b, ci, co, s) for b, ci, co, s in SHAPES]

    results: dict[str, dict] = {}
    for device in devices:
        name = _device_description(device)
        results[name] = {}
        for shape in shapes:
            per_label = bench_shape(shape, device, args.repeats)
            results[name][shape] = per_label
            print(f"[{device.type}] {_shape_name(shape)}")
            for label, (ratio, sec, _) in per_label.items():
                print(f"  {label:28s} {ratio:6.2f}×  {sec * 1e3:9.1f} ms")
    report = render(results, args.repeats)
    if args.out.exists():  # keep the sections other recipes write: <!-- name:start --> ... <!-- name:end -->
        previous = args.out.read_text(encoding="utf-8")
        sections = re.finditer(r"<!-- (\S+):start -->.*?<!-- \1:end -->\n?", previous, re.DOTALL)
        report += "".join("\n" + section.group(0) for section in sections)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    tmp.write_text(report, encoding="utf-8")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
