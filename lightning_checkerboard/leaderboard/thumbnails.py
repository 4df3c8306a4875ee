"""Thumbnails of a run's pictures for the leaderboard page: its final sample grid and last spectra plot.

They go to ``<out>/assets/<run_id>/``; a run id comes from a record, so every path is checked to lie
inside the output folder, and a picture that cannot be read or placed costs its row the picture only.
"""

from __future__ import annotations

import io
from pathlib import Path

from lightning_checkerboard._io import atomic_write_bytes
from lightning_checkerboard._paths import OutsideFolderError, path_inside
from lightning_checkerboard.records import ResultRecord

__all__ = ["ASSETS", "copy_thumbnails"]

#: The output folder's subfolder for pictures (thumbnails and scatter plots).
ASSETS = "assets"
_THUMB_TILES = 4  # sample-grid thumbnails keep the top-left 4×4 samples at full resolution
_SPECTRA_WIDTH = 360


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def copy_thumbnails(record: ResultRecord, run_dir: Path | None, out: Path) -> dict[str, str]:
    """Thumbnails of the run's final sample grid and last spectra plot; relative paths by kind."""
    from PIL import Image

    if run_dir is None:
        return {}
    written = {}
    grid = run_dir / "samples" / "final.png"
    spectra = sorted((run_dir / "spectra").glob("*.png")) if (run_dir / "spectra").is_dir() else []
    try:
        if grid.is_file():
            with Image.open(grid) as image:
                side = 2 + _THUMB_TILES * (record.image_size + 2)  # SampleGrid pads tiles by 2 pixels
                crop = image.convert("RGB").crop((0, 0, min(side, image.width), min(side, image.height)))
                atomic_write_bytes(path_inside(out, ASSETS, record.run_id, "final.png"), _png(crop))
            written["samples"] = f"{ASSETS}/{record.run_id}/final.png"
        if spectra:
            with Image.open(spectra[-1]) as image:
                image = image.convert("RGB")
                if image.width > _SPECTRA_WIDTH:
                    image = image.resize((_SPECTRA_WIDTH, round(image.height * _SPECTRA_WIDTH / image.width)),
                                         Image.LANCZOS)
                atomic_write_bytes(path_inside(out, ASSETS, record.run_id, "spectra.png"), _png(image.quantize(64)))
            written["spectra"] = f"{ASSETS}/{record.run_id}/spectra.png"
    except (OSError, OutsideFolderError):  # an unreadable image or a bad run id costs the row its picture
        pass
    return written
