"""The ``probe`` command: read a decoder's grid artifacts per period and input kind, its sites and tiling seams.

Usage::

    lightning-checkerboard probe SPEC [--latent-channels C] [--stride S] [--value-range=-1,1]
        [--size PX] [--num-images N] [--batch-size B] [--seed K] [--inputs photos,constant-latents,...]
        [--tile SIZE --overlap N [--tile-image-size PX]] [--random-weights] [--no-audit]
        [--device cpu] [--json PATH]

``SPEC`` is ``package.module:factory`` (a callable returning the decoder; importing it runs its code),
``diffusers:<folder or owner/name[/subfolder]>`` (an ``AutoencoderKL``, safetensors weights only) or
``diffusers-layout:<sd|sd3|small|tiny>`` (a known layout with random weights). The latent channels are
read from the model's config (or its first convolution) and the stride from decoding a 4x4 latent;
``--latent-channels`` and ``--stride`` give or check them. Every mistake prints one ``error: ...`` line
on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from lightning_checkerboard._argparse import EXIT_USAGE, OneLineParser
from lightning_checkerboard.probe.inputs import INPUT_KINDS

__all__ = ["build_parser", "main"]

MAX_SEED = 2**32 - 1


def _int(minimum: int, maximum: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text) if len(text) <= 20 else None
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            allowed = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            raise argparse.ArgumentTypeError(f"expected an integer {allowed}, got {text[:40]!r}")
        return value

    return parse


def _value_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        low = high = float("nan")
    if not low < high or high - low == float("inf"):
        raise argparse.ArgumentTypeError(f"expected two finite numbers LOW,HIGH with LOW < HIGH, got {text[:40]!r}")
    return low, high


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [kind for kind in kinds if kind not in INPUT_KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"expected some of {','.join(INPUT_KINDS)}, got {text[:80]!r}")
    return kinds


def build_parser(prog: str = "python -m lightning_checkerboard.probe") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Read the grid pattern of a decoder's outputs at every period up to its stride, for "
        "photographs (round trip), constant images and latents and linear ramps, with 95 % bounds; list its "
        "upsampling sites; with --tile, read the seams of a tiled decode.",
        epilog="A module:factory spec is imported, which runs its code: name only code you chose to run. "
        "diffusers: folders run no code and load safetensors weights only.",
    )
    parser.add_argument("spec", metavar="SPEC", help="package.module:factory, diffusers:<folder or owner/name"
                        "[/subfolder]> or diffusers-layout:<sd|sd3|small|tiny>")
    model = parser.add_argument_group("model")
    model.add_argument("--latent-channels", type=_int(1), default=None,
                       help="the latent's channels; default: the model's config.latent_channels, else its first "
                       "convolution's input channels")
    model.add_argument("--stride", type=_int(2), default=None,
                       help="the decoder's total upsampling; default: found by decoding a 4x4 latent (a given "
                       "value is checked against it)")
    model.add_argument("--value-range", type=_value_range, default=(-1.0, 1.0), metavar="LOW,HIGH",
                       help="the images' value range (default -1,1 as diffusers' VAEs; write --value-range=-1,1 "
                       "with '=' when LOW is negative); readings are in 8-bit levels of it")
    model.add_argument("--random-weights", action="store_true",
                       help="diffusers: specs: build the model from its config with random weights (said so in "
                       "the output) instead of loading pretrained ones")
    reading = parser.add_argument_group("reading")
    reading.add_argument("--inputs", type=_kinds, default=tuple(INPUT_KINDS), metavar="KINDS",
                         help=f"comma-separated input kinds (default all: {','.join(INPUT_KINDS)})")
    reading.add_argument("--size", type=_int(1), default=None, metavar="PX",
                         help="side of the decoded images, a multiple of the stride and at least 4x it; default "
                         "max(128, 8 x stride)")
    reading.add_argument("--num-images", type=_int(2), default=16, help="inputs per kind (default 16)")
    reading.add_argument("--batch-size", type=_int(1), default=8, help="inputs decoded at once (default 8)")
    reading.add_argument("--seed", type=_int(0, MAX_SEED), default=0, help="seeds the inputs and random weights")
    reading.add_argument("--no-audit", action="store_true", help="leave out the audit of the upsampling sites")
    tiling = parser.add_argument_group("tiling")
    tiling.add_argument("--tile", type=_int(1), default=None, metavar="SIZE",
                        help="decode in tiles of SIZE output pixels (a multiple of the stride) and read the seams")
    tiling.add_argument("--overlap", type=_int(0), default=0, metavar="N",
                        help="tile overlap in output pixels, a multiple of the stride, below --tile (default 0)")
    tiling.add_argument("--tile-image-size", type=_int(1), default=None, metavar="PX",
                        help="side of the tiled decodes, a multiple of the tile period T = SIZE - N and at least "
                        "4T; default: the smallest such multiple of at least 256")
    output = parser.add_argument_group("output")
    output.add_argument("--device", default=None, help="cpu, cuda, cuda:N; default: cuda when available")
    output.add_argument("--json", default=None, metavar="PATH", help="also write every number to this JSON file")
    return parser


def _json_path(text: str | None) -> Path | None:
    from lightning_checkerboard.probe.decoder import ProbeError

    if text is None:
        return None
    path = Path(text).expanduser()
    if not text.strip() or text.endswith(("/", "\\")) or path.is_dir():
        raise ProbeError(f"--json needs a file path such as probe.json; got {text!r}")
    if path.exists() and not path.is_file():
        raise ProbeError(f"--json {text!r} exists and is not a regular file")
    if not path.parent.is_dir():
        raise ProbeError(f"--json {text!r}: its folder does not exist")
    return path


def _run(args: argparse.Namespace) -> int:
    from lightning_checkerboard._io import atomic_write_json
    from lightning_checkerboard.probe.decoder import DecoderAdapter, ProbeError
    from lightning_checkerboard.probe.loading import load_decoder
    from lightning_checkerboard.probe.probing import ProbeOptions, probe_decoder
    from lightning_checkerboard.probe.report import format_report, to_json
    from lightning_checkerboard.score.runner import resolve_device

    if args.tile is None and args.overlap:
        raise ProbeError("--overlap needs --tile")
    json_path = _json_path(args.json)
    device = resolve_device(args.device)
    loaded = load_decoder(args.spec, random_weights=args.random_weights, seed=args.seed)
    adapter = DecoderAdapter(loaded.model, latent_channels=args.latent_channels, stride=args.stride,
                             value_range=args.value_range, device=device)
    options = ProbeOptions(size=args.size, num_images=args.num_images, batch_size=args.batch_size, seed=args.seed,
                           kinds=args.inputs, tile=args.tile, overlap=args.overlap,
                           tile_image_size=args.tile_image_size, audit=not args.no_audit)
    try:
        report = probe_decoder(adapter, options, source=loaded.source)
    except ProbeError:
        raise
    except Exception as error:  # the decoder's own failure on an input, whatever it raises
        text = " ".join(str(error).split())[:240]
        raise ProbeError(f"the decoder failed while probed ({type(error).__name__}: {text})") from None
    weights = {"random": "RANDOM weights", "pretrained": "pretrained weights", "factory": "the factory's weights"}
    notes = (f"{weights[loaded.weights]}: {loaded.note}" if loaded.note else weights[loaded.weights],)
    report = replace(report, notes=notes)
    if json_path is not None:
        atomic_write_json(json_path, to_json(report))
    print(format_report(report))
    if json_path is not None:
        print(f"json: {json_path}")
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "python -m lightning_checkerboard.probe") -> int:
    """Run the command; returns the exit status (0, or 2 for any mistake, reported in one line)."""
    try:
        args = build_parser(prog).parse_args(argv)
    except SystemExit as exc:  # --help, or a malformed flag already reported in one line
        return int(exc.code or 0)
    try:
        return _run(args)
    except ValueError as error:  # ProbeError, ScoreError (device), UntrustedFileError: all one line
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
