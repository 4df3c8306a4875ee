"""Thumbnails of a run's pictures for the leaderboard page: its final sample grid and last spectra plot.

They go to ``<out>/assets/<run_id>/``. Pictures are untrusted like the records beside them: each is
opened through :func:`~lightning_checkerboard._untrusted.open_image`, so it must be a regular file
inside its run directory (a link that leads out, a FIFO or a device is refused without waiting on
it) and hold at most :data:`MAX_PICTURE_PIXELS` pixels, read from its header before anything is
decoded (a small file that would expand to gigabytes is refused for free). A run id comes from a
record, so every path written is checked to lie inside the output folder. A picture that cannot be
read or placed costs its row the picture only, and is reported with the reason.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from lightning_checkerboard._io import atomic_write_bytes
from lightning_checkerboard._paths import OutsideFolderError, path_inside
from lightning_checkerboard._untrusted import UntrustedFileError, open_image, resolve_inside
from lightning_checkerboard.records import ResultRecord

__all__ = ["ASSETS", "MAX_PICTURE_PIXELS", "copy_thumbnails", "thumbnail_paths"]

#: The output folder's subfolder for pictures (thumbnails and scatter plots).
ASSETS = "assets"
#: The most pixels a run's picture may have (a 64-sample grid of 512×512 images has 17 million).
MAX_PICTURE_PIXELS = 40_000_000
_THUMB_TILES = 4  # sample-grid thumbnails keep the top-left 4×4 samples at full resolution
_SPECTRA_WIDTH = 360


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def thumbnail_paths(run_id: str) -> dict[str, str]:
    """Where :func:`copy_thumbnails` may write a run's pictures, relative to the output folder, by kind."""
    return {"samples": f"{ASSETS}/{run_id}/final.png", "spectra": f"{ASSETS}/{run_id}/spectra.png"}


def _last_spectra(run_dir: Path) -> Path | None:
    """The last ``spectra/*.png`` by name, when ``spectra/`` is a folder inside ``run_dir``."""
    try:
        folder = resolve_inside(run_dir / "spectra", run_dir)
        with os.scandir(folder) as listing:
            names = sorted(entry.name for entry in listing if entry.name.endswith(".png"))
    except (OSError, UntrustedFileError):
        return None
    return run_dir / "spectra" / names[-1] if names else None


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def copy_thumbnails(record: ResultRecord, run_dir: Path | None, out: Path,
                    problems: list[tuple[str, str]] | None = None) -> dict[str, str]:
    """Thumbnails of the run's final sample grid and last spectra plot; relative paths by kind.

    Args:
        record: the run's record (its run id names the folder, its image size the crop).
        run_dir: the run directory the pictures must lie in; ``None``: no pictures.
        out: the leaderboard folder.
        problems: where to append ``(picture, one-line reason)`` for every picture skipped.
    """
    if run_dir is None:
        return {}
    problems = [] if problems is None else problems
    targets = thumbnail_paths(record.run_id)
    written = {}
    grid = run_dir / "samples" / "final.png"
    spectra = _last_spectra(run_dir)
    for kind, source in (("samples", grid), ("spectra", spectra)):
        if source is None or not os.path.lexists(source):
            continue
        try:
            with open_image(source, root=run_dir, max_pixels=MAX_PICTURE_PIXELS) as image:
                data = _grid_thumbnail(image, record.image_size) if kind == "samples" else _spectra_thumbnail(image)
            atomic_write_bytes(path_inside(out, *targets[kind].split("/")), data)
        except (UntrustedFileError, OutsideFolderError) as err:
            problems.append((str(source), f"{_one_line(err)} Picture skipped."))
            continue
        except Exception as err:  # Pillow's decoders raise many kinds (OSError, SyntaxError, zlib.error…)
            problems.append((str(source), f"{source}: not a picture that can be decoded ({_one_line(err)[:200]}). "
                                          "Picture skipped."))
            continue
        written[kind] = targets[kind]
    return written


def _grid_thumbnail(image, image_size: int) -> bytes:
    side = 2 + _THUMB_TILES * (image_size + 2)  # SampleGrid pads tiles by 2 pixels
    crop = image.crop((0, 0, min(side, image.width), min(side, image.height))).convert("RGB")
    return _png(crop)


def _spectra_thumbnail(image) -> bytes:
    from PIL import Image

    image = image.convert("RGB")
    if image.width > _SPECTRA_WIDTH:
        image = image.resize((_SPECTRA_WIDTH, max(1, round(image.height * _SPECTRA_WIDTH / image.width))),
                             Image.LANCZOS)
    return _png(image.quantize(64))
