"""Decode speed of ``fuse_resize_conv`` on a diffusers ``AutoencoderKL`` decoder: a 64×64×4 latent to 512×512.

Usage:
    python recipes/benchmarks/bench_decoder.py                  # SD-1.x VAE layout, CPU: prints the section
    python recipes/benchmarks/bench_decoder.py --out leaderboards/speed.md    # ... and writes it there
    python recipes/benchmarks/bench_decoder.py --layout small --repeats 3 --channels-last

The decoder is built offline with seeded random weights (speed does not depend on the weights), in
float32 and eval mode, and decodes under ``torch.no_grad()``. The original model and its fused copy
decode the same latent in interleaved rounds, their order alternating each round so that drift hits
both alike; the report gives each one's min / median / max seconds and the speed-up, original time /
fused time within a round, as the median (and range) over rounds: below 1.00× the fused copy is
slower. The first decode of each model is the warm-up and the exactness check: the fused output is
compared with the original's before any timing, and the run stops if they differ beyond float
round-off.

The upsamplers are a small share of a decoder's work (the report counts the floating-point operations
of both decodes: the speed-up they would show if every operation ran at the same rate), so it also
times each ``Upsample2D`` alone on the input it receives in this decode (original against fused, same
rounds), which says where the speed-up comes from. A fused site runs the tied transposed convolution
only where that is the cheaper path for its input shape, and resize → conv elsewhere; the report counts
how many do.

Layouts: ``sd`` is Stable Diffusion 1.x's VAE (``block_out_channels=(128, 256, 512, 512)``,
``layers_per_block=2``, 3 upsamplers, ~49 M decoder parameters); ``small`` keeps its shape at a
quarter of the width; ``tiny`` (8 channels) is a smoke run. The report is one section of
``leaderboards/speed.md`` between ``<!-- bench_decoder:start -->`` and ``<!-- bench_decoder:end -->``,
written only with ``--out`` (the rest of the file is kept); without it the section is printed only.
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
from lightning_checkerboard.adapt import layer as adapt_layer

START, END = "<!-- bench_decoder:start -->", "<!-- bench_decoder:end -->"
SCRIPT = "python recipes/benchmarks/bench_decoder.py"
ROOT = Path(__file__).resolve().parents[2]

#: AutoencoderKL layouts: block_out_channels, layers_per_block, norm_num_groups.
LAYOUTS = {
    "sd": ((128, 256, 512, 512), 2, 32),
    "small": ((32, 64, 128, 128), 1, 32),
    "tiny": ((8, 8, 8, 8), 1, 4),
}
#: Timing rounds by default: about 4 minutes for the sd layout on a 2-core CPU.
DEFAULT_REPEATS = 5
#: The largest relative difference (max |fused - original| / max |original|) the check accepts.
TOLERANCE = 1e-4


def build_vae(layout: str):
    """A seeded, randomly initialised float32 ``AutoencoderKL`` of the named layout, in eval mode."""
    from diffusers import AutoencoderKL

    channels, layers, groups = LAYOUTS[layout]
    torch.manual_seed(0)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(channels),
        up_block_types=("UpDecoderBlock2D",) * len(channels),
        block_out_channels=channels,
        layers_per_block=layers,
        latent_channels=4,
        norm_num_groups=groups,
    ).eval()


def _upsamplers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    return {path: module for path, module in model.named_modules() if type(module).__name__ == "Upsample2D"}


def _timer(step: Callable[[], object], device: torch.device) -> Callable[[], float]:
    def timed() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    return timed


def _summary(seconds: list[float]) -> dict[str, float]:
    return {"min": min(seconds), "median": statistics.median(seconds), "max": max(seconds)}


def interleaved(steps: dict[str, Callable[[], float]], repeats: int) -> dict[str, dict]:
    """``repeats`` rounds of ``original`` and ``fused``, alternating their order: seconds and per-round ratios."""
    seconds: dict[str, list[float]] = {"original": [], "fused": []}
    ratios = []
    for round_ in range(repeats):
        order = ["original", "fused"] if round_ % 2 == 0 else ["fused", "original"]
        times = {name: steps[name]() for name in order}
        for name, value in times.items():
            seconds[name].append(value)
        ratios.append(times["original"] / times["fused"])
    return {"original": _summary(seconds["original"]), "fused": _summary(seconds["fused"]),
            "speedup": _summary(ratios)}


def work(layout: str, latent: int, batch: int) -> dict[str, dict[str, float]]:
    """Floating-point operations of one decode, original and fused: in all and in the upsamplers.

    Counted by ``torch.utils.flop_counter`` on the meta device (no values, no time), so it is the same on
    every machine: the speed-up the decode would show if every operation ran at the same rate.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        vae = build_vae(layout)
        latents = torch.empty(batch, 4, latent, latent)
    counts = {}
    for name, model in (("original", vae), ("fused", fuse_resize_conv(vae))):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model.decode(latents)
        per_module = counter.get_flop_counts()
        counts[name] = {"total": float(counter.get_total_flops()),
                        "upsamplers": float(sum(sum(ops.values()) for module, ops in per_module.items()
                                                if module.endswith(".upsamplers.0")))}
    return counts


def bench(layout: str, latent: int, batch: int, repeats: int, device: torch.device,
          channels_last: bool = False) -> dict:
    """Check the fused decode against the original, then time both, and each upsampler alone."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    vae = build_vae(layout).to(device=device, memory_format=memory_format)
    fused = fuse_resize_conv(vae)
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(batch, 4, latent, latent, generator=generator).to(device=device, memory_format=memory_format)

    inputs: dict[str, torch.Tensor] = {}
    hooks = [module.register_forward_pre_hook(lambda _, args, path=path: inputs.__setitem__(path, args[0]))
             for path, module in _upsamplers(vae).items()]
    with torch.no_grad():  # the warm-up of both models, and the exactness check
        reference = vae.decode(latents).sample
        output = fused.decode(latents).sample
    for hook in hooks:
        hook.remove()
    max_abs = float((output - reference).abs().max())
    max_rel = max_abs / float(reference.abs().max())
    if max_rel > TOLERANCE:
        raise SystemExit(f"error: the fused decode differs from the original by {max_rel:.1e} (relative), "
                         f"more than {TOLERANCE:g}")

    def decode(model: torch.nn.Module) -> Callable[[], object]:
        def step() -> object:
            with torch.no_grad():
                return model.decode(latents)

        return step

    results = {
        "layout": layout, "latent": latent, "batch": batch, "repeats": repeats, "output": tuple(output.shape),
        "channels_last": channels_last, "device": _device_description(device),
        "fused_sites": len(fused.fused_sites), "max_abs": max_abs, "max_rel": max_rel, "sites": [],
        "work": work(layout, latent, batch),
        "decode": interleaved({"original": _timer(decode(vae), device), "fused": _timer(decode(fused), device)},
                              repeats),
    }
    print(f"decode: {_ratio_text(results['decode'])}", flush=True)
    fused_modules = _upsamplers(fused)
    for path, module in _upsamplers(vae).items():
        x = inputs.get(path)
        if x is None or f"{path}" not in fused_modules:
            continue
        conv = module.conv
        tied = adapt_layer.fused_is_faster("nearest", 2, x.shape[-2], x.shape[-1], conv.in_channels, conv.out_channels)

        def site(model: torch.nn.Module, x: torch.Tensor = x) -> Callable[[], object]:
            def step() -> object:
                with torch.no_grad():
                    return model(x)

            return step

        row = interleaved({"original": _timer(site(module), device),
                           "fused": _timer(site(fused_modules[path]), device)}, repeats)
        results["sites"].append({"path": path, "channels": (conv.in_channels, conv.out_channels),
                                 "input": tuple(x.shape[-2:]), "tied": tied, **row})
        print(f"{path}: {_ratio_text(row)}", flush=True)
    results["tied_sites"] = sum(site["tied"] for site in results["sites"])
    return results


def _ratio_text(row: dict) -> str:
    return (f"original {row['original']['median']:.3f} s, fused {row['fused']['median']:.3f} s (medians), "
            f"speed-up {row['speedup']['median']:.2f}×")


def _device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    cpu = platform.processor() or platform.machine()
    return f"CPU: {cpu}, {torch.get_num_threads()} threads ({os.cpu_count()} cores)"


def _seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1e3:.1f} ms" if value >= 0.01 else f"{value * 1e3:.2f} ms"


def _ops(value: float) -> str:
    return f"{value / 1e9:.0f} G" if value >= 1e9 else f"{value / 1e6:.1f} M"


def render(results: dict, command: str = SCRIPT) -> str:
    """The markdown section of ``results`` (what :func:`bench` returns), between the section markers."""
    channels, layers, _ = LAYOUTS[results["layout"]]
    latent, output = results["latent"], results["output"]
    decode = results["decode"]
    lines = [
        START,
        f"## `fuse_resize_conv` on a VAE decode: {latent}×{latent}×4 latent to {output[-2]}×{output[-1]}",
        "",
        f"`AutoencoderKL(block_out_channels={channels}, layers_per_block={layers}, latent_channels=4)` "
        f"(layout `{results['layout']}`), seeded random weights, float32, eval, `torch.no_grad()`, batch "
        f"{results['batch']}{', channels-last' if results['channels_last'] else ''}. "
        f"{results['fused_sites']} `Upsample2D` sites fused, {results['tied_sites']} of them running the tied "
        f"transposed convolution at this size"
        f"{' (the others resize → conv)' if results['tied_sites'] < results['fused_sites'] else ''}; "
        f"the fused decode is within "
        f"{results['max_abs']:.1e} (max abs, {results['max_rel']:.1e} relative) of the original. "
        f"{results['repeats']} interleaved round{'s' if results['repeats'] > 1 else ''} after one warm-up decode each. Regenerate with `{command}`.",
        "",
        f"- date: {dt.date.today().isoformat()}; lightning-checkerboard {__version__}; torch {torch.__version__}; "
        f"Python {platform.python_version()}",
        f"- {results['device']}",
        "",
        "| decode | min | median | max |",
        "|---|---:|---:|---:|",
    ]
    for name in ("original", "fused"):
        row = decode[name]
        lines.append(f"| {name} | {_seconds(row['min'])} | {_seconds(row['median'])} | {_seconds(row['max'])} |")
    speedup = decode["speedup"]
    lines += [
        "",
        f"Speed-up, original / fused time in the same round: **{speedup['median']:.2f}×** (median; "
        f"{speedup['min']:.2f}–{speedup['max']:.2f}× over the rounds).",
    ]
    flops = results["work"]
    lines += [
        "",
        f"Work per decode (floating-point operations counted by `torch.utils.flop_counter`): "
        f"{_ops(flops['original']['total'])} original, {_ops(flops['fused']['total'])} fused, of which the "
        f"upsamplers {_ops(flops['original']['upsamplers'])} and {_ops(flops['fused']['upsamplers'])}: "
        f"at an equal rate for every operation the fused decode would run "
        f"{flops['original']['total'] / flops['fused']['total']:.2f}× as fast.",
    ]
    if results["sites"]:
        lines += [
            "",
            "Each upsampler alone, on the input it receives in this decode (medians of the same number of rounds):",
            "",
            "| site | channels | input | path | original | fused | speed-up |",
            "|---|---:|---:|---|---:|---:|---:|",
        ]
        for site in results["sites"]:
            c_in, c_out = site["channels"]
            height, width = site["input"]
            lines.append(
                f"| `{site['path']}` | {c_in} → {c_out} | {height}×{width} | "
                f"{'tied' if site['tied'] else 'resize → conv'} | {_seconds(site['original']['median'])} | "
                f"{_seconds(site['fused']['median'])} | {site['speedup']['median']:.2f}× |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this script's marked section of ``path`` (or append it), keeping everything else in the file."""
    replace_marked_section(path, section, START, END)


def _shown_path(path: Path) -> str:
    """``path`` as a reader would type it: relative to the repository when inside it, else its name only."""
    try:
        return Path(os.path.relpath(path.resolve(), ROOT)).as_posix() if path.resolve().is_relative_to(ROOT) \
            else path.name
    except (OSError, ValueError):
        return path.name


def command_line(args: argparse.Namespace) -> str:
    """The command that reruns this measurement, without absolute paths (the flags left at default omitted)."""
    parts = [SCRIPT]
    if args.layout != "sd":
        parts += ["--layout", args.layout]
    if args.latent != 64:
        parts += ["--latent", str(args.latent)]
    if args.batch != 1:
        parts += ["--batch", str(args.batch)]
    if args.repeats != DEFAULT_REPEATS:
        parts += ["--repeats", str(args.repeats)]
    if args.device != "cpu":
        parts += ["--device", args.device]
    if args.channels_last:
        parts.append("--channels-last")
    if args.out is not None:
        parts += ["--out", _shown_path(args.out)]
    return " ".join(parts)



def _device(parser: argparse.ArgumentParser, name: str) -> torch.device:
    try:
        device = torch.device(name)
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        parser.error(f"--device must name a device this machine has (cpu, cuda, cuda:1, ...); got {name!r}: {reason}")
    return device


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="sd",
                        help="AutoencoderKL layout: sd (Stable Diffusion 1.x's VAE), small, tiny (default sd)")
    parser.add_argument("--latent", type=int, default=64, help="latent height and width (default 64: 512² output)")
    parser.add_argument("--batch", type=int, default=1, help="latents per decode (default 1)")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                        help=f"interleaved timing rounds (default {DEFAULT_REPEATS})")
    parser.add_argument("--device", default="cpu", help="torch device to time on (default cpu)")
    parser.add_argument("--channels-last", action="store_true", help="model and latent in channels-last memory format")
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown file whose bench_decoder section to replace, e.g. leaderboards/speed.md "
                             "(default: print only)")
    args = parser.parse_args(argv)
    if args.latent < 1 or args.batch < 1 or args.repeats < 1:
        parser.error(f"--latent, --batch and --repeats must be at least 1; got {args.latent}, {args.batch} and "
                     f"{args.repeats}")
    device = _device(parser, args.device)
    results = bench(args.layout, args.latent, args.batch, args.repeats, device, args.channels_last)
    section = render(results, command_line(args))
    print(section, end="")
    if args.out is not None:
        write_section(args.out, section)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
