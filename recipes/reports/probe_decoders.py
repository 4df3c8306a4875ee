"""Grid artifacts of diffusers ``AutoencoderKL`` decoders, per period and input kind, and their tiling seams.

    python recipes/reports/probe_decoders.py   # offline layouts, random weights: 5 to 9 min on a shared 2-core CPU
    python recipes/reports/probe_decoders.py --decoders diffusers-layout:sd diffusers:stabilityai/sd-vae-ft-mse

For each decoder (a ``lightning-checkerboard probe`` spec) this runs the probe
(:func:`lightning_checkerboard.probe.probe_decoder`): the grid pattern at periods 2, 4 and 8 of
photographs sent through the encoder and decoder, constant images and latents and linear ramps,
with 95 % bounds, and the audit of the decoder's upsampling sites; then the seams of a tiled decode
at each ``--seams`` setting (``SIZE:OVERLAP`` in output pixels), beside the whole decode of the same
latents. Writes ``leaderboards/probe.md`` and ``leaderboards/probe.json``. The default decoders are
layouts built offline with random weights (said so in the report); pretrained decoders need their
weights, from the Hub or a local folder. As a contrast (``--contrast``), the package's own untrained
``AutoencoderKL`` (:mod:`lightning_checkerboard.models.autoencoder`) is probed with transposed 3×3
convolutions in its decoder stages, which paint a grid, and with nearest + conv, which does not.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard._io import atomic_write_json, atomic_write_text
from lightning_checkerboard.cli import UsageError, positive_int, run_cli
from lightning_checkerboard.probe import (
    DecoderAdapter,
    LoadedDecoder,
    ProbeError,
    ProbeOptions,
    load_decoder,
    probe_decoder,
    read_seams,
    to_json,
)
from lightning_checkerboard.reporting import provenance

SCRIPT = "recipes/reports/probe_decoders.py"
DEFAULT_DECODERS = ("diffusers-layout:sd", "diffusers-layout:sd3")
PRETRAINED_COMMAND = ("python recipes/reports/probe_decoders.py --decoders diffusers-layout:sd diffusers-layout:sd3 "
                      "diffusers:stabilityai/sd-vae-ft-mse diffusers:madebyollin/sdxl-vae-fp16-fix")
ONE_DECODER_COMMAND = "lightning-checkerboard probe diffusers:stabilityai/sd-vae-ft-mse --tile 64 --overlap 32"


def _seam(text: str) -> tuple[int, int]:
    size, sep, overlap = text.partition(":")
    try:
        pair = (int(size), int(overlap)) if sep else None
    except ValueError:
        pair = None
    if pair is None or pair[0] < 1 or pair[1] < 0:
        raise argparse.ArgumentTypeError(f"expected SIZE:OVERLAP in output pixels such as 64:32, got {text[:40]!r}")
    return pair


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=SCRIPT, description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--decoders", nargs="+", default=list(DEFAULT_DECODERS), metavar="SPEC",
                        help="probe specs: diffusers-layout:<name>, diffusers:<folder or owner/name>, module:factory")
    parser.add_argument("--contrast", nargs="*", default=["deconv_k3", "nearest_conv"], metavar="UPSAMPLER",
                        help="also probe the package's own untrained AutoencoderKL with each of these upsamplers, "
                        "a contrast for the readings")
    parser.add_argument("--size", type=positive_int, default=128, help="side of the period readings' decodes")
    parser.add_argument("--num-images", type=positive_int, default=8, help="inputs per kind")
    parser.add_argument("--seams", type=_seam, nargs="*", default=[(32, 0), (64, 32)], metavar="SIZE:OVERLAP",
                        help="tilings whose seams are read (output pixels)")
    parser.add_argument("--seam-images", type=positive_int, default=8, help="images per seam reading")
    parser.add_argument("--tile-image-size", type=positive_int, default=192,
                        help="side of the seam readings' decodes (a multiple of every tile period, >= 4 periods)")
    parser.add_argument("--batch-size", type=positive_int, default=4, help="inputs decoded at once")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    parser.add_argument("--out", type=Path, default=Path("leaderboards"), help="folder for probe.md and probe.json")
    parser.add_argument("--from-json", action="store_true",
                        help="measure nothing: rewrite probe.md from the probe.json in --out")
    return parser


def _cell(amplitude: float | None, upper: float | None) -> str:
    if amplitude is None:
        return "–"
    bound = "inf" if upper is None else f"{upper:.2f}"
    return f"{amplitude:.2f} (< {bound})"


def _decoder_markdown(entry: dict) -> list[str]:
    report = entry["report"]
    lines = [f"## `{report['source']}`", "", f"{entry['weights']}. Latent {report['latent_channels']} channels, "
             f"stride {report['stride']}; period readings on {report['size']}×{report['size']} px decodes, "
             f"{report['inputs'][0]['images'] or entry['num_images']} inputs per kind; {entry['seconds']:.0f} s.", "",
             f"{report['summary'][0].upper()}{report['summary'][1:]}.", ""]
    kinds = [item for item in report["inputs"]]
    lines.append("| period | " + " | ".join(item["kind"] for item in kinds) + " |")
    lines.append("|---:|" + "---:|" * len(kinds))
    periods = [p["period"] for p in kinds[0]["periods"]]
    for index, period in enumerate(periods):
        cells = [_cell(item["periods"][index]["amplitude"], item["periods"][index]["upper"]) for item in kinds]
        lines.append(f"| {period} | " + " | ".join(cells) + " |")
    lines.append("| all | " + " | ".join(_cell(item["score"], item["upper"]) for item in kinds) + " |")
    lines += ["", "Seams of a tiled decode (tile period T = tile − overlap; seam = the periods that divide T but not "
              "the stride; the same latents decoded whole beside it):", "",
              "| tile | overlap | T | seam periods | images | tiled seam | untiled |",
              "|---:|---:|---:|---|---:|---:|---:|"]
    for seam in entry["seams"]:
        lines.append(f"| {seam['tile']} | {seam['overlap']} | {seam['period']} | "
                     f"{', '.join(map(str, seam['seam_periods']))} | {seam['images']} × {seam['size']} px | "
                     f"{_cell(seam['seam']['amplitude'], seam['seam']['upper'])} | "
                     f"{_cell(seam['untiled_seam']['amplitude'], seam['untiled_seam']['upper'])} |")
    lines += ["", "Upsampling sites (audit on random latents; score: share of the site output's RMS in grid "
              "patterns):", "", "| site | kind | stride | overlap max/min | fusable | score (< 95 %) |",
              "|---|---|---:|---:|---|---:|"]
    for row in report["audit"]["rows"] if report["audit"] else []:
        score = "–" if row["score"] is None else f"{row['score']:.3f} (< {row['upper']:.3f})"
        lines.append(f"| `{row['path']}` | {row['kind']} | {row['stride']} | {row['overlap']:.2f} | {row['fusable']} | "
                     f"{score} |")
    return lines + [""]


def _markdown(results: dict) -> str:
    lines = ["# Decoder probe: grid artifacts of AutoencoderKL decoders", "",
             f"Generated by `{results['command']}` on {results['date']} ({results['machine']}), "
             f"{results['runtime_s']:.0f} s (times depend on what else the machine ran). Readings are RMS "
             "amplitudes in 8-bit levels of the decoder's range "
             "[-1, 1] (255 = the whole range), with their 95 % upper bounds; 0.00 means no pattern stood out "
             "of the noise, and the bound says how large one could still be.", "",
             "**Random weights.** The `diffusers-layout:` decoders are built offline from their layout alone, with "
             "seeded random weights: they show what the architecture does before training, not what a trained VAE "
             "does. The last sections are a contrast: the package's own untrained `AutoencoderKL` with transposed "
             "3×3 convolutions in its decoder stages (a grid the probe must read) and with nearest + 3×3 conv. "
             "With the Hub reachable (or the weights in a local folder), the pretrained decoders join the table:",
             "", f"    {PRETRAINED_COMMAND}", "", "and one decoder alone:", "", f"    {ONE_DECODER_COMMAND}", "",
             "Input kinds: " + "; ".join(f"`{item['kind']}`: {item['description']}"
                                          for item in results["decoders"][0]["report"]["inputs"]) + ".", ""]
    for entry in results["decoders"]:
        lines += _decoder_markdown(entry)
    return "\n".join(lines)


def _contrast(upsampler: str) -> LoadedDecoder:
    """The package's own untrained ``AutoencoderKL`` with ``upsampler`` in every decoder stage (seed 0)."""
    from lightning_checkerboard.models import AutoencoderKL

    torch.manual_seed(0)
    try:
        model = AutoencoderKL(upsampler).eval()
    except ValueError as error:
        raise ProbeError(f"--contrast: {error}") from None
    widths = "-".join(map(str, model.block_channels))
    return LoadedDecoder(model, f"models.AutoencoderKL(\"{upsampler}\")", "random",
                         f"the package's own AutoencoderKL, widths {widths}, {upsampler} in every decoder stage, "
                         "untrained (seed 0): a contrast that shows what the probe reads where a decoder paints a grid")


def _probe_one(spec: str, args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    loaded = _contrast(spec.partition(":")[2]) if spec.startswith("contrast:") else load_decoder(spec, seed=0)
    spec = loaded.source
    adapter = DecoderAdapter(loaded.model, device=args.device)
    options = ProbeOptions(size=args.size, num_images=args.num_images, batch_size=args.batch_size)
    report = probe_decoder(adapter, options, source=spec)
    seam_options = ProbeOptions(num_images=args.seam_images, batch_size=args.batch_size,
                                tile_image_size=args.tile_image_size)
    seams = []
    for seam in read_seams(adapter, seam_options, args.seams) if args.seams else ():
        seams.append(to_json(replace(report, seam=seam))["tiling"])
        print(f"  {spec} --tile {seam.tile} --overlap {seam.overlap}: seam {seam.seam[0]:.2f} (< {seam.seam[1]:.2f}), "
              f"untiled {seam.untiled_seam[0]:.2f}", flush=True)
    weights = {"random": "Random weights", "pretrained": "Pretrained weights", "factory": "The factory's weights"}
    return {"spec": spec, "weights": f"{weights[loaded.weights]}: {loaded.note}" if loaded.note else loaded.weights,
            "num_images": args.num_images, "report": to_json(report), "seams": seams,
            "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.from_json:
        path = args.out / "probe.json"
        if not path.is_file():
            raise UsageError(f"{path} is missing; run `python {SCRIPT}` first")
        atomic_write_text(args.out / "probe.md", _markdown(json.loads(path.read_text(encoding="utf-8"))))
        print(f"wrote {args.out / 'probe.md'} from {path}")
        return 0
    start = time.perf_counter()
    torch.set_grad_enabled(False)
    entries = []
    for spec in [*args.decoders, *(f"contrast:{name}" for name in args.contrast)]:
        print(f"probing {spec} ...", flush=True)
        try:
            entries.append(_probe_one(spec, args))
        except ProbeError as error:
            raise UsageError(f"{spec}: {error}") from None
        print(f"  {entries[-1]['report']['summary']}", flush=True)
    results = {"decoders": entries, "runtime_s": time.perf_counter() - start, **provenance(SCRIPT, argv)}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "probe.json", results)
    atomic_write_text(args.out / "probe.md", _markdown(results))
    print(f"wrote {args.out / 'probe.md'} and probe.json in {results['runtime_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
