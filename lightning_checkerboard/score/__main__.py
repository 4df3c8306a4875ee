"""``python -m lightning_checkerboard.score GENERATED [--reference REAL]``: score images for checkerboard artifacts.

Prints a table on stdout; ``--json PATH`` writes every number with its protocol, ``--figures DIR`` the
spectra and the strongest images. Every user mistake (no images, an unknown source, an unreadable
file under ``--corrupt error``, images too small for ``--levels``, a reference of another size, a Hub
dataset that is offline) ends with one ``error: ...`` line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lightning_checkerboard.score.reading import CORRUPT_POLICIES, IMAGE_EXTENSIONS, ScoreError

__all__ = ["build_parser", "main"]

EXIT_USAGE = 2
#: Strongest images ranked and drawn when --figures is given without --top.
DEFAULT_TOP = 8


class _OneLineParser(argparse.ArgumentParser):
    """argparse whose mistakes are one ``error:`` line (the usage goes to ``--help``)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"error: {message} (see --help)\n")


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text}")
        return value

    return parse


def build_parser(prog: str = "python -m lightning_checkerboard.score") -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog=prog,
        description="Score a set of images for checkerboard artifacts (the RMS of the grid pattern in 8-bit "
        "levels, with its 95 % upper bound), and compare it with a reference set.",
        epilog=f"Sources: a folder (recursive: {' '.join(IMAGE_EXTENSIONS)}), an image file, a glob pattern "
        "(quote it; ** recurses), a .npy/.npz array (N x H x W x C uint8, or float in [0, 1]), "
        "hf:<owner/repo>[:split], or photos (the embedded photographs, as a reference only). Images are never "
        "resampled: without --size they are grouped by size and each group is scored apart.",
    )
    parser.add_argument("generated", metavar="GENERATED", help="the images to score")
    parser.add_argument("--reference", metavar="REAL", default=None,
                        help="images to compare with (same forms, or photos): spectral distance, SWD, FID/KID")
    sizes = parser.add_argument_group("sizes")
    sizes.add_argument("--size", type=_count(1), default=None, metavar="N",
                       help="centre-crop every image to N x N (smaller images are skipped and counted); default: "
                       "group by size")
    sizes.add_argument("--levels", type=_count(1), default=None,
                       help="stride-2 stages whose periods 2 .. 2**levels are scored; default: 3 where the "
                       "smallest image allows it")
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
    output.add_argument("--json", type=Path, default=None, metavar="PATH", help="write every number and the protocol")
    output.add_argument("--figures", type=Path, default=None, metavar="DIR",
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


def _run(args: argparse.Namespace) -> int:
    from lightning_checkerboard._io import atomic_write_json
    from lightning_checkerboard.score.report import format_table, to_json
    from lightning_checkerboard.score.runner import ScoreOptions, score_images

    if args.json is not None:
        _writable(args.json.parent, "--json folder")
    if args.figures is not None:
        _writable(args.figures, "--figures")
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
    )
    run = score_images(args.generated, args.reference, options)
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
