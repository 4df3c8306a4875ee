"""Decode many images, skipping or stopping on unreadable ones as the ``corrupt`` policy says."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from PIL import Image

from lightning_checkerboard.data.errors import DatasetError
from lightning_checkerboard.data.images import decode_native, resize_square

__all__ = ["CORRUPT_POLICIES", "DecodeReport", "decode_all", "warn_skipped"]

#: Values of the ``corrupt`` argument.
CORRUPT_POLICIES = ("skip", "error")


@dataclass
class DecodeReport:
    """What a decoding pass skipped: the names of unreadable images (files or row numbers)."""

    skipped: list[str] = field(default_factory=list)


def decode_all(items, image_size: int, corrupt: str, dataset: str, report: DecodeReport) -> list:
    """Decode ``(label, opener)`` pairs to resized ``(C, S, S)`` uint8 arrays.

    Args:
        items: iterable of ``(label, opener)``; ``opener()`` returns a PIL image. ``label`` names
            the image in messages (a file path or a row number).
        image_size: output side in pixels.
        corrupt: ``"skip"`` (count in ``report``, keep going) or ``"error"``.
        dataset: canonical dataset name, for messages.
        report: collects the labels of skipped images.

    Raises:
        DatasetError: on the first unreadable image when ``corrupt="error"``.
    """
    arrays = []
    for label, opener in items:
        try:
            with opener() as image:
                arrays.append(resize_square(decode_native(image), image_size))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            # PIL raises OSError for truncated/unknown data, ValueError/SyntaxError for some malformed headers.
            if corrupt == "error":
                raise DatasetError(
                    f"Dataset {dataset!r}: cannot read image {label} ({type(exc).__name__}: "
                    f"{_first_line(exc)}); remove or repair it, or pass corrupt='skip' (--corrupt skip) to skip "
                    "unreadable images."
                ) from exc
            report.skipped.append(str(label))
    return arrays


def warn_skipped(dataset: str, report: DecodeReport) -> None:
    """Warn once about the images that were skipped."""
    if report.skipped:
        shown = ", ".join(report.skipped[:3]) + (", ..." if len(report.skipped) > 3 else "")
        warnings.warn(
            f"Dataset {dataset!r}: skipped {len(report.skipped)} unreadable image(s) ({shown}); "
            "pass corrupt='error' (--corrupt error) to stop on them instead.",
            UserWarning,
            stacklevel=3,
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no message"
