"""CPU speed of ``fuse_resize_conv`` on a diffusers ``AutoencoderKL`` decoder and on single upsampling sites.

Usage:
    python recipes/benchmarks/bench_adapt.py            # Stable Diffusion's VAE layout (256² output) and its sites
    python recipes/benchmarks/bench_adapt.py --quick    # a smoke run: 32² decode, small sites, three rounds

The models are built offline with seeded random weights (speed does not depend on the weights). Two
workloads are timed: a forward under ``torch.no_grad()`` and a forward followed by ``backward`` of a
scalar loss. The original and the fused copy run in interleaved rounds (their order alternates each
round, so drift hits both alike); the speed-up is the median over rounds of original time / fused time
in the same round, so below 1.00 the fused copy is slower. The fused copy's output is checked against
the original's before timing.

Besides the whole decoder, each upsampler shape of Stable Diffusion's UNet and VAE (64–1280 channels,
4²–64² input) is timed alone: diffusers' ``Upsample2D`` (nearest ×2 then a 3×3 conv) and, for a few
shapes, ``nn.Upsample(mode="bilinear")`` then ``nn.Conv2d``.

The report is one section of ``leaderboards/speed.md`` between ``<!-- bench_adapt:start -->`` and
``<!-- bench_adapt:end -->``; the rest of the file is kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from lightning_checkerboard import __version__, fuse_resize_conv
from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard.reporting import replace_marked_section

START, END = "<!-- bench_adapt:start -->", "<!-- bench_adapt:end -->"

# AutoencoderKL layouts: (block_out_channels, layers_per_block). "sd" is Stable Diffusion's VAE (3
# nearest ×2 + 3×3 conv upsamplers in the decoder, ~84 M parameters); "small" keeps its shape at a
# quarter of the width.
CONFIGS = {
    "sd": ((128, 256, 512, 512), 2),
    "small": ((32, 64, 128, 128), 1),
}


def build_vae(config: str):
    """A seeded, randomly initialised ``AutoencoderKL`` of the named layout, in eval mode."""
    from diffusers import AutoencoderKL

    channels, layers = CONFIGS[config]
    torch.manual_seed(0)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(channels),
        up_block_types=("UpDecoderBlock2D",) * len(channels),
        block_out_channels=channels,
        layers_per_block=layers,
        latent_channels=4,
        norm_num_groups=32,
    ).eval()


def _steps(model, latents: torch.Tensor) -> dict[str, Callable[[], None]]:
    def decode() -> None:
        with torch.no_grad():
            model.decode(latents)

    def decode_backward() -> None:
        model.zero_grad(set_to_none=True)
        model.decode(latents).sample.square().mean().backward()

    return {"decode (no grad)": decode, "decode forward+backward": decode_backward}


def _time(step: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def bench(config: str, size: int, batch: int, repeats: int) -> dict:
    """Median seconds of both models and the median per-round speed-up, per workload."""
    vae = build_vae(config)
    fused = fuse_resize_conv(vae)
    factor = 2 ** (len(CONFIGS[config][0]) - 1)
    latents = torch.randn(batch, 4, size // factor, size // factor)
    with torch.no_grad():
        reference, output = vae.decode(latents).sample, fused.decode(latents).sample
    if tuple(output.shape[-2:]) != (size, size):
        raise SystemExit(f"error: decoded {tuple(output.shape[-2:])}, expected {size}×{size}")
    max_error = float((output - reference).abs().max() / reference.abs().max())
    results = {"sites": len(fused.fused_sites), "max_rel_error": max_error}
    results["workloads"] = _interleaved({"original": _steps(vae, latents), "fused": _steps(fused, latents)}, repeats)
    for workload, row in results["workloads"].items():
        print(f"{workload}: {row}")
    return results


def _interleaved(models: dict[str, dict[str, Callable[[], None]]], repeats: int) -> dict[str, dict]:
    """Per workload: median seconds of each model and the median per-round speed-up (original / fused)."""
    results = {}
    for workload in models["original"]:
        for name in models:  # warm-up: allocator, kernel choice
            _time(models[name][workload])
        seconds: dict[str, list[float]] = {"original": [], "fused": []}
        speedups = []
        for round_ in range(repeats):
            order = ["original", "fused"] if round_ % 2 == 0 else ["fused", "original"]
            times = {name: _time(models[name][workload]) for name in order}
            for name in times:
                seconds[name].append(times[name])
            speedups.append(times["original"] / times["fused"])
        results[workload] = {"original_s": statistics.median(seconds["original"]),
                             "fused_s": statistics.median(seconds["fused"]), "speedup": statistics.median(speedups)}
    return results


# Single upsampling sites: (model, mode, in_channels, out_channels, input size). The UNet rows are SD-1.5's
# up-block upsamplers (1280 channels at 8² and 16², 640 at 32², for a 64² latent) and a 1024 → 512 block at
# 4²; the VAE rows its decoder's widths at the sizes of smaller images.
SITE_SHAPES = [
    ("UNet", "nearest", 1024, 512, 4),
    ("UNet", "nearest", 1280, 1280, 8),
    ("UNet", "nearest", 1280, 1280, 16),
    ("UNet", "nearest", 640, 640, 32),
    ("VAE", "nearest", 512, 512, 32),
    ("VAE", "nearest", 256, 256, 64),
    ("VAE", "nearest", 128, 128, 64),
    ("VAE", "nearest", 64, 64, 64),
    ("VAE", "bilinear", 512, 512, 16),
    ("VAE", "bilinear", 256, 256, 32),
    ("VAE", "bilinear", 64, 64, 64),
]
QUICK_SITE_SHAPES = [("UNet", "nearest", 128, 128, 8), ("VAE", "nearest", 64, 64, 16),
                     ("VAE", "bilinear", 64, 64, 16)]


def build_site(mode: str, in_channels: int, out_channels: int) -> torch.nn.Module:
    """One seeded site: diffusers' ``Upsample2D`` for nearest, ``Upsample`` → ``Conv2d`` for bilinear."""
    torch.manual_seed(0)
    if mode == "nearest":
        from diffusers.models.upsampling import Upsample2D

        return Upsample2D(in_channels, use_conv=True, out_channels=out_channels).eval()
    return torch.nn.Sequential(torch.nn.Upsample(scale_factor=2, mode="bilinear"),
                               torch.nn.Conv2d(in_channels, out_channels, 3, padding=1)).eval()


def _site_steps(model, x: torch.Tensor) -> dict[str, Callable[[], None]]:
    def forward() -> None:
        with torch.no_grad():
            model(x)

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        model(x).square().mean().backward()

    return {"no grad": forward, "forward+backward": forward_backward}


def bench_sites(shapes: list[tuple], batch: int, repeats: int) -> list[dict]:
    """Each single-site shape, original against fused, in both workloads."""
    rows = []
    for model, mode, c_in, c_out, size in shapes:
        site = build_site(mode, c_in, c_out)
        fused = fuse_resize_conv(site)
        x = torch.randn(batch, c_in, size, size)
        with torch.no_grad():
            reference, output = site(x), fused(x)
        max_error = float((output - reference).abs().max() / reference.abs().max())
        if len(fused.fused_sites) != 1 or max_error > 1e-4:
            raise SystemExit(f"error: {mode} site {c_in}→{c_out} at {size}²: {len(fused.fused_sites)} sites fused, "
                             f"relative error {max_error:.1e}")
        workloads = _interleaved({"original": _site_steps(site, x), "fused": _site_steps(fused, x)}, repeats)
        rows.append({"model": model, "mode": mode, "in": c_in, "out": c_out, "size": size, "workloads": workloads})
        print(f"{model} {mode} {c_in}→{c_out} at {size}²: "
              + ", ".join(f"{name} {row['speedup']:.2f}×" for name, row in workloads.items()), flush=True)
    return rows


def _cpu_description() -> str:
    cpu = platform.processor() or platform.machine()
    return f"CPU: {cpu}, {torch.get_num_threads()} threads ({os.cpu_count()} cores)"


def render(results: dict, *, config: str, size: int, batch: int, repeats: int, sites: list[dict] | None = None,
           command: str = "python recipes/benchmarks/bench_adapt.py") -> str:
    channels, layers = CONFIGS[config]
    lines = [
        START,
        "## `fuse_resize_conv` on a diffusers AutoencoderKL decoder",
        "",
        f"`AutoencoderKL(block_out_channels={channels}, layers_per_block={layers}, latent_channels=4)` "
        f"(layout `{config}`), seeded random weights; batch {batch}, {size}² output; "
        f"{results['sites']} `Upsample2D` sites fused; fused output within "
        f"{results['max_rel_error']:.1e} (relative) of the original. Median of {repeats} interleaved rounds. "
        f"Regenerate with `{command}`.",
        "",
        f"- date: {dt.date.today().isoformat()}; lightning-checkerboard {__version__}; torch {torch.__version__}; "
        f"Python {platform.python_version()}",
        f"- {_cpu_description()}",
        "",
        "| workload | original | fused | speed-up |",
        "|---|---:|---:|---:|",
    ]
    for workload, row in results["workloads"].items():
        lines.append(f"| {workload} | {row['original_s'] * 1e3:.1f} ms | {row['fused_s'] * 1e3:.1f} ms | "
                     f"{row['speedup']:.2f}× |")
    if sites:
        lines += [
            "",
            "### Single sites: Stable Diffusion's UNet and VAE upsampler shapes",
            "",
            f"One site alone, batch {batch}, median of {repeats} interleaved rounds: diffusers' `Upsample2D` "
            "(nearest ×2 → 3×3 conv) or `Upsample(mode=\"bilinear\")` → `Conv2d`. Per input shape the fused "
            "layer runs the tied transposed convolution where it is the cheaper path and resize → conv "
            "elsewhere, so a speed-up of 1.00× means the plain path was kept.",
            "",
            "| model | site | channels | input | no grad: original | fused | speed-up "
            "| forward+backward: original | fused | speed-up |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in sites:
            cells = [row["model"], row["mode"], f"{row['in']} → {row['out']}", f"{row['size']}²"]
            for workload in ("no grad", "forward+backward"):
                w = row["workloads"][workload]
                cells += [f"{w['original_s'] * 1e3:.1f} ms", f"{w['fused_s'] * 1e3:.1f} ms", f"{w['speedup']:.2f}×"]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this script's marked section of ``path`` (or append it), keeping everything else in the file."""
    replace_marked_section(path, section, START, END)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="sd", help="AutoencoderKL layout (default sd)")
    parser.add_argument("--size", type=int, default=256, help="decoded image size (default 256)")
    parser.add_argument("--batch", type=int, default=1, help="images per decode (default 1)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timing rounds (default 5)")
    parser.add_argument("--out", type=Path, default=Path("leaderboards/speed.md"), help="markdown file to update")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 32² output, the small site shapes, three rounds")
    parser.add_argument("--no-sites", action="store_true", help="time the decoder only, not the single sites")
    args = parser.parse_args(argv)
    command = " ".join(["python recipes/benchmarks/bench_adapt.py", *(argv if argv is not None else sys.argv[1:])])
    factor = 2 ** (len(CONFIGS[args.config][0]) - 1)
    if args.quick:
        args.size, args.repeats = 32, 3
    if args.size < factor or args.size % factor:
        parser.error(f"--size must be a positive multiple of {factor} for layout {args.config}; got {args.size}")
    if args.repeats < 1 or args.batch < 1:
        parser.error(f"--repeats and --batch must be at least 1; got {args.repeats} and {args.batch}")
    results = bench(args.config, args.size, args.batch, args.repeats)
    sites = None if args.no_sites else bench_sites(QUICK_SITE_SHAPES if args.quick else SITE_SHAPES, 1, args.repeats)
    write_section(args.out, render(results, config=args.config, size=args.size, batch=args.batch,
                                   repeats=args.repeats, sites=sites, command=command))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
