"""Score a set of images end to end: open the sources, plan the sizes, measure every group.

:func:`score_images` is the library form of ``python -m lightning_checkerboard.score``; it takes the
sources as strings and the settings as a :class:`ScoreOptions`, and returns a :class:`ScoreRun` that
:mod:`~lightning_checkerboard.score.report` prints or writes and
:mod:`~lightning_checkerboard.score.figures` draws.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lightning_checkerboard._progress import ProgressLines, format_duration, progress_seconds
from lightning_checkerboard._validation import check_choice, check_int, check_non_negative_int, check_positive_int
from lightning_checkerboard.data.images import max_pixels_for
from lightning_checkerboard.score.computing import Measurement, checkerboard_summary, measure_group
from lightning_checkerboard.score.plan import Plan, make_plan
from lightning_checkerboard.score.reading import (
    CORRUPT_POLICIES,
    PhotosSource,
    ScoreError,
    SkipReport,
    open_source,
    survey,
)

__all__ = ["FID_CHOICES", "MAX_PIXELS_CAP", "ScoreOptions", "ScoreRun", "default_max_pixels", "resolve_device",
           "score_images"]

#: Values of ``ScoreOptions.fid`` (``--fid``), as in the training recipes.
FID_CHOICES = ("auto", "required", "off")
#: The largest ``max_pixels`` accepted (2**34: a 131072 × 131072 image).
MAX_PIXELS_CAP = 1 << 34


@dataclass(frozen=True)
class ScoreOptions:
    """How to score.

    Attributes:
        size: ``N`` to centre-crop every image to ``N x N``; ``None`` to group images by size.
        levels: stride-2 stages whose periods (2 .. ``2**levels``) are scored; ``None`` chooses up to 3.
        batch_size: images per batch.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; ``None`` for CUDA when available.
        corrupt: ``"skip"`` (count unreadable images and go on) or ``"error"``.
        npz_key: the array to read from a generated ``.npz`` that holds several.
        reference_npz_key: the same for a reference ``.npz``.
        fid: ``"auto"`` (FID, KID, precision/recall when Inception weights can be had), ``"required"``
            or ``"off"``.
        fid_weights: an explicit Inception-v3 weights file.
        swd_samples: images per set that SWD takes (its memory grows with them); 0 for all.
        top: strongest generated images to keep per group, for figures and the report.
        spectra: keep the mean 2-D power spectra, for figures.
        progress: show a progress bar; ``None`` shows one when stderr is a terminal.
        max_pixels: the most pixels (width × height) an image may have; larger ones are skipped and
            counted from their headers, never decoded. ``None``: :func:`default_max_pixels`.
    """

    size: int | None = None
    levels: int | None = None
    batch_size: int = 64
    device: str | None = None
    corrupt: str = "skip"
    npz_key: str | None = None
    reference_npz_key: str | None = None
    fid: str = "auto"
    fid_weights: str | Path | None = None
    swd_samples: int = 2048
    top: int = 0
    spectra: bool = False
    progress: bool | None = None
    max_pixels: int | None = None


def default_max_pixels(size: int | None) -> int:
    """The pixel limit without ``--max-pixels``: 4096² images, or 64 × size² with a larger ``--size``."""
    return max_pixels_for(size)


@dataclass
class ScoreRun:
    """Everything one scoring pass found, for the report and the figures.

    ``notes`` say where images were found when the source's text does not (a run directory's saved
    samples); ``warnings`` name sources that look wrong for the score (sample grids).
    """

    generated: str
    reference: str | None
    options: ScoreOptions
    plan: Plan
    device: str
    measurements: list[Measurement]
    all_sizes: dict[str, Any] | None
    skipped: tuple[SkipReport, SkipReport]
    found: dict[str, int | None]
    seconds: float
    fid_extractor: str | None = None
    max_pixels: int | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def resolve_device(text: str | None) -> torch.device:
    """``None`` → CUDA when available, else CPU; otherwise the named device, which must exist.

    Raises:
        ScoreError: an unknown device name, or one this machine does not have.
    """
    if text is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as exc:  # unknown names, and CUDA builds without a GPU
        reason = " ".join(str(exc).split())
        reason = reason.split(". ")[0].rstrip(".") if len(reason) > 120 else reason.rstrip(".")
        raise ScoreError(f"--device {text!r} is not usable here ({reason}); use --device cpu.") from None
    return device


def _check(options: ScoreOptions) -> None:
    check_positive_int(options.batch_size, "--batch-size")
    check_choice(options.corrupt, "--corrupt", CORRUPT_POLICIES)
    check_choice(options.fid, "--fid", FID_CHOICES)
    check_non_negative_int(options.swd_samples, "--swd-samples")
    check_non_negative_int(options.top, "top")
    if options.max_pixels is not None:
        check_int(options.max_pixels, "--max-pixels", minimum=1, maximum=MAX_PIXELS_CAP)
    if options.fid_weights is not None and not Path(options.fid_weights).is_file():
        raise ScoreError(f"--fid-weights {str(options.fid_weights)!r} is not a file.")
    try:
        progress_seconds()  # before any image is read
    except ValueError as exc:
        raise ScoreError(str(exc)) from None


def _make_fid(options: ScoreOptions, device: torch.device):
    from lightning_checkerboard.metrics import FID, FIDUnavailableWarning

    with warnings.catch_warnings():
        # The reason is reported with the numbers; a warning on top of it would say it twice.
        warnings.simplefilter("ignore", FIDUnavailableWarning)
        try:
            fid = FID(policy=options.fid, weights_path=options.fid_weights, reset_real_features=True)
        except (FileNotFoundError, RuntimeError) as exc:  # RuntimeError: --fid required without weights
            reason = " ".join(str(exc).split()).split("; ")[0].rstrip(".")
            reason = reason.split(", but ", 1)[-1]  # the library's "FID needs weights and policy='required', but …"
            raise ScoreError(f"--fid {options.fid}: {reason}; pass --fid-weights PATH, or use --fid auto.") from None
        except ValueError as exc:  # InceptionWeightsError: not Inception-v3 weights when read as data (one line)
            flag = "--fid-weights" if options.fid_weights is not None else f"--fid {options.fid}"
            raise ScoreError(f"{flag}: {' '.join(str(exc).split())}") from None
    return fid.to(device)


class _CountLines:
    """Instead of a bar, when stderr is no terminal: a line every ``seconds`` (images done, rate, time left)."""

    def __init__(self, total: int, seconds: float) -> None:
        self.total, self.done, self.start = total, 0, time.monotonic()
        self.lines = ProgressLines(self._describe, seconds, stream=sys.stderr)

    def _describe(self) -> str:
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = f", about {format_duration((self.total - self.done) / rate)} left" if rate > 0 else ""
        return f"scoring {self.done} of {self.total} images, {rate:.0f} images/s{left}"

    def update(self, count: int = 1) -> None:
        self.done += count
        self.lines.update()

    def __enter__(self) -> _CountLines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _progress(total: int, enabled: bool | None):
    """A ``tqdm`` bar on a terminal; otherwise progress lines (``$LIGHTNING_CHECKERBOARD_PROGRESS_SECONDS``)."""
    from tqdm.auto import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    if enabled is None and not show:
        return _CountLines(total, progress_seconds())
    return tqdm(total=total, unit="img", desc="scoring", disable=not show, file=sys.stderr, leave=False)


def score_images(generated: str, reference: str | None = None, options: ScoreOptions | None = None) -> ScoreRun:
    """Score ``generated`` for checkerboard artifacts, and compare it with ``reference`` when given.

    Args:
        generated: a folder, image file, glob pattern, ``.npy``/``.npz`` array or ``hf:<repo>[:split]``.
        reference: the same forms, or ``photos`` for the embedded photographs; ``None`` for none.
        options: see :class:`ScoreOptions`.

    Raises:
        ScoreError: any input the command cannot score as asked (one-line message).
        DatasetError: a Hub dataset that cannot be loaded.
    """
    options = options or ScoreOptions()
    _check(options)
    device = resolve_device(options.device)
    with contextlib.ExitStack() as sources:
        return _score(generated, reference, options, device, sources)


def _score(generated: str, reference: str | None, options: ScoreOptions, device: torch.device,
           sources: contextlib.ExitStack) -> ScoreRun:
    start = time.perf_counter()
    skipped = (SkipReport(), SkipReport())
    max_pixels = options.max_pixels if options.max_pixels is not None else default_max_pixels(options.size)
    gen_source = open_source(generated, "GENERATED", options.npz_key, max_pixels)
    if isinstance(gen_source, PhotosSource):
        raise ScoreError("photos can only be a --reference: the embedded photographs are cut to the generated sizes.")
    sources.callback(gen_source.close)
    ref_source = (None if reference is None
                  else open_source(reference, "--reference", options.reference_npz_key, max_pixels))
    photos = isinstance(ref_source, PhotosSource)
    if ref_source is not None and not photos:
        sources.callback(ref_source.close)
    gen_entries = survey(gen_source, options.corrupt, skipped[0], max_pixels)
    ref_entries = (None if ref_source is None or photos
                   else survey(ref_source, options.corrupt, skipped[1], max_pixels))
    plan = make_plan(gen_entries, ref_entries, photos_reference=photos, size=options.size, levels=options.levels,
                     skipped=skipped)
    notes = [source.note for source in (gen_source, ref_source) if getattr(source, "note", None)]
    grids = [line for source, entries, role in ((gen_source, gen_entries, "GENERATED"),
                                                 (ref_source, ref_entries, "--reference"))
             if entries and (line := _grid_warning(source, entries, role, options.corrupt))]
    fid = _make_fid(options, device) if ref_source is not None else None
    planned = sum(len(g.generated) for g in plan.groups)
    planned_ref = planned if photos else sum(len(g.reference) for g in plan.groups)
    measurements = []
    with _progress(planned + (planned_ref if ref_source is not None else 0), options.progress) as progress:
        for group in plan.groups:
            measurements.append(
                measure_group(group, plan, gen_source, ref_source, device=device, batch_size=options.batch_size,
                              corrupt=options.corrupt, skipped=skipped, fid=fid, swd_samples=options.swd_samples,
                              top=options.top, spectra=options.spectra, progress=progress)
            )
    scored = [m for m in measurements if m.result["checkerboard"] is not None]
    if not scored:
        raise ScoreError(f"no images could be read from {generated} ({len(skipped[0].unreadable)} unreadable).")
    all_sizes = None
    if len(scored) > 1:
        from lightning_checkerboard.metrics import CheckerboardScore

        total = CheckerboardScore(levels=plan.levels).to(device)
        for measurement in scored:
            total.merge_state(measurement.checkerboard)
        all_sizes = {"checkerboard": checkerboard_summary(total)}
    found = {
        "generated": len(gen_source),
        "reference": None if ref_source is None or photos else len(ref_source),
        "reference_unused": None if ref_entries is None else len(ref_entries) - planned_ref
        - len(skipped[1].too_small),
    }
    return ScoreRun(
        generated=generated,
        reference=reference,
        options=options,
        plan=plan,
        device=str(device),
        measurements=measurements,
        all_sizes=all_sizes,
        skipped=skipped,
        found=found,
        seconds=time.perf_counter() - start,
        fid_extractor=None if fid is None else fid.extractor,
        max_pixels=max_pixels,
        notes=notes,
        warnings=grids,
    )


#: Images of a source looked at for the gutters of a sample grid (the first ones).
GRID_CHECKED = 4


def _grid_warning(source, entries, role: str, corrupt: str) -> str | None:
    """One line when one of the first images of ``source`` looks like a grid of images (see :mod:`.grid`)."""
    from lightning_checkerboard.run_samples import find_final_samples
    from lightning_checkerboard.score.grid import grid_pitch
    from lightning_checkerboard.score.reading import SkipReport, load_checked

    for entry in entries[:GRID_CHECKED]:
        image = load_checked(source, entry, corrupt, SkipReport())  # counted when the scoring pass reads it
        pitch = None if image is None else grid_pitch(image)
        if pitch is not None:
            run_dir = Path(entry.label).parent.parent  # a run's samples/final.png
            hint = (f"its run directory has them: score {run_dir}" if source.kind == "files"
                    and find_final_samples(run_dir) is not None else "a run directory gives its saved samples: "
                    "score <run dir>")
            return (f"{role} {entry.label} looks like a grid of images (gutters of one colour every {pitch} pixels): "
                    f"its gutters and seams are scored with the images; score the images one by one ({hint})")
    return None
