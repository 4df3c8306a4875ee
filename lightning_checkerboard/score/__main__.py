"""``python -m lightning_checkerboard.score GENERATED [--reference REAL]``: score images for checkerboard artifacts.

Prints a table on stdout; ``--json PATH`` writes every number with its protocol, ``--figures DIR`` the
spectra and the strongest images. Every user mistake (no images, a path that does not exist, an
unreadable file under ``--corrupt error``, images too small for ``--levels``, a reference of another
size, a Hub dataset that is offline, a malformed flag) ends with one ``error: ...`` line on stderr
and exit code 2; where it goes is checked before any image is read. Images of more than
``--max-pixels`` pixels are skipped and counted from their headers, with one ``warning:`` line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lightning_checkerboard._argparse import EXIT_USAGE, OneLineParser
from lightning_checkerboard.data.images import DEFAULT_MAX_PIXELS
from lightning_checkerboard.score.plan import MAX_LEVELS, MAX_SIZE
from lightning_checkerboard.score.reading import CORRUPT_POLICIES, IMAGE_EXTENSIONS, ScoreError
from lightning_checkerboard.score.runner import MAX_PIXELS_CAP

__all__ = ["build_parser", "main"]

#: Strongest images ranked and drawn when --figures is given without --top.
DEFAULT_TOP = 8


def _count(minimum: int, maximum: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text) if len(text) <= 40 else None
        except ValueError:
            value = None
        shown = text if len(text) <= 40 else f"{text[:20]}… ({len(text)} characters)"
        if value is None:
            raise argparse.ArgumentTypeError(f"expected an integer, got {shown!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            allowed = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            raise argparse.ArgumentTypeError(f"expected an integer {allowed}, got {shown}")
        return value

    return parse


def build_parser(prog: str = "python -m lightning_checkerboard.score") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Score a set of images for checkerboard artifacts (the RMS of the grid pattern in 8-bit "
        "levels, with its 95 % upper bound), and compare it with a reference set.",
        epilog="Sources: a run directory (the final evaluation samples it saved, samples/final_samples.npz), "
        f"a folder (recursive: {' '.join(IMAGE_EXTENSIONS)}), an image file, a glob pattern "
        "(quote it; ** recurses), a .npy/.npz array (N x H x W x C uint8, or float in [0, 1]), "
        "hf:<owner/repo>[:split], or photos (the embedded photographs, as a reference only). Images are never "
        "resampled: without --size they are grouped by size and each group is scored apart.",
    )
    parser.add_argument("generated", metavar="GENERATED", help="the images to score")
    parser.add_argument("--reference", metavar="REAL", default=None,
                        help="images to compare with (same forms, or photos): spectral distance, SWD, FID/KID")
    sizes = parser.add_argument_group("sizes")
    sizes.add_argument("--size", type=_count(1, MAX_SIZE), default=None, metavar="N",
                       help="centre-crop every image to N x N (smaller images are skipped and counted); default: "
                       "group by size")
    sizes.add_argument("--levels", type=_count(1, MAX_LEVELS), default=None,
                       help=f"stride-2 stages whose periods 2 .. 2**levels are scored, 1 to {MAX_LEVELS}; default: 3 "
                       "(with --size, which must then fit 3 levels), else 3 where the smallest image allows it")
    sizes.add_argument("--max-pixels", type=_count(1, MAX_PIXELS_CAP), default=None, metavar="N",
                       help="images of more than N pixels (width x height) are skipped and counted from their "
                       "headers, never decoded (a small PNG can claim 13000 x 13000); default: "
                       f"{DEFAULT_MAX_PIXELS} (4096 x 4096), or 64 x size**2 when that is larger")
    reading = parser.add_argument_group("reading")
    reading.add_argument("--corrupt", choices=CORRUPT_POLICIES, default="skip",
                         help="unreadable images: skip and count them (default), or stop with an error")
    reading.add_argument("--npz-key", default=None, help="the array of a GENERATED .npz that holds several")
    reading.add_argument("--reference-npz-key", default=None, help="the same for a --reference .npz")
    reading.add_argument("--batch-size", type=_count(1), default=64, help="images per batch (default 64)")
    reading.add_argument("--device", default=None, help="cpu, cuda, cuda:N; default: cuda when available")
    quality = parser.add_argument_group("reference metrics")
    quality.add_argument("--fid", choices=("auto", "required", "off"), default="auto",
                         help="auto: FID, KID and precision/recall when Inception weights can be had, else "
                         "reported unavailable (default); required: missing weights are an error; off")
    quality.add_argument("--fid-weights", type=Path, default=None, metavar="PATH",
                         help="Inception-v3 weights file (torch-fidelity's); default: torch hub cache, then download")
    quality.add_argument("--swd-samples", type=_count(0), default=2048,
                         help="images per set that SWD takes (the first ones; its memory grows with them); "
                         "0: all (default 2048)")
    output = parser.add_argument_group("output")
    output.add_argument("--json", default=None, metavar="PATH",
                        help="write every number and the protocol to this file")
    output.add_argument("--figures", default=None, metavar="DIR",
                        help="write mean power spectra and a grid of the strongest images with 4x zooms")
    output.add_argument("--top", type=_count(0), default=None,
                        help="strongest images to rank per size group, listed and drawn with --figures (a second "
                        f"spectral pass over every image); default: {DEFAULT_TOP} with --figures, else 0")
    return parser


def _writable(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".lcb-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ScoreError(f"{what} {str(path)!r} is not writable ({exc.strerror or exc}).") from None


def _output_paths(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """``--json`` and ``--figures`` as paths, checked before any image is read."""
    json_path = figures = None
    if args.json is not None:
        text = args.json
        if not text.strip():
            raise ScoreError("--json needs a file path (such as report.json); got ''.")
        json_path = Path(text).expanduser()
        if text.endswith(("/", "\\")) or json_path.is_dir():
            raise ScoreError(f"--json {text!r} is a folder; give a file path such as {str(json_path / 'report.json')!r}.")
        if json_path.exists() and not json_path.is_file():
            raise ScoreError(f"--json {text!r} exists and is not a regular file; give another path.")
        _writable(json_path.parent, "--json folder")
    if args.figures is not None:
        if not args.figures.strip():
            raise ScoreError("--figures needs a folder path (such as figures/); got ''.")
        figures = Path(args.figures).expanduser()
        if figures.exists() and not figures.is_dir():
            raise ScoreError(f"--figures {args.figures!r} exists and is not a folder; give a folder path.")
        _writable(figures, "--figures")
    return json_path, figures


def _run(args: argparse.Namespace) -> int:
    from lightning_checkerboard._io import atomic_write_json
    from lightning_checkerboard.score.report import format_table, skip_warnings, to_json
    from lightning_checkerboard.score.runner import ScoreOptions, score_images

    args.json, args.figures = _output_paths(args)
    options = ScoreOptions(
        size=args.size,
        levels=args.levels,
        batch_size=args.batch_size,
        device=args.device,
        corrupt=args.corrupt,
        npz_key=args.npz_key,
        reference_npz_key=args.reference_npz_key,
        fid=args.fid,
        fid_weights=args.fid_weights,
        swd_samples=args.swd_samples,
        top=args.top if args.top is not None else (DEFAULT_TOP if args.figures is not None else 0),
        spectra=args.figures is not None,
        max_pixels=args.max_pixels,
    )
    run = score_images(args.generated, args.reference, options)
    for line in run.notes:
        print(f"note: {line}", file=sys.stderr)
    for line in [*run.warnings, *skip_warnings(run)]:
        print(f"warning: {line}", file=sys.stderr)
    figures = []
    if args.figures is not None:
        from lightning_checkerboard.score.figures import write_figures

        figures = write_figures(run, args.figures)
    if args.json is not None:
        atomic_write_json(args.json, to_json(run, figures))
    print(format_table(run, figures))
    if args.json is not None:
        print(f"json: {args.json}")
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m lightning_checkerboard.score") -> int:
    """Run the command; returns the exit status (0, or 2 for a user mistake, reported in one line)."""
    from lightning_checkerboard.data.errors import DatasetError

    try:
        args = build_parser(prog).parse_args(argv)
    except SystemExit as exc:  # --help, or a malformed flag already reported in one line
        return int(exc.code or 0)
    try:
        return _run(args)
    except (ScoreError, DatasetError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
