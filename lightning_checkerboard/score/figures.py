"""Figures of a scoring run: mean power spectra of both sets, and the images with the strongest pattern.

Per group of size ``HxW``, in the figures folder:

- ``spectra-HxW.png``: the azimuthally averaged mean power spectra
  (:func:`~lightning_checkerboard.functional.plot_spectra`), generated and reference;
- ``spectrum2d-HxW.png``: the mean 2-D power spectra (log scale, DC at the centre), where grid patterns
  show as isolated peaks on the lattice of the measured periods;
- ``strongest-HxW.png``: the generated images with the largest per-image amplitude, each beside a 4x
  zoom of its centre, titled with that amplitude in 8-bit levels.

Drawn on Agg figures, never through pyplot, like :mod:`lightning_checkerboard.functional.plots`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lightning_checkerboard.score.computing import GroupFigures, Strongest
from lightning_checkerboard.score.runner import ScoreRun

__all__ = ["ZOOM", "write_figures"]

#: Magnification of the zoomed crops.
ZOOM = 4
_PAIRS_PER_ROW = 4


def _as_display(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """``(C, H, W)`` uint8 or float in [0, 1] to what ``imshow`` takes, and its colour map."""
    picture = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    if picture.shape[0] == 1:
        return picture[0], "gray"
    return picture.transpose(1, 2, 0), None


def _zoom(image: np.ndarray) -> np.ndarray:
    """The centre ``1/ZOOM`` of ``image`` (at least 4 pixels a side), for display at the image's size."""
    _, height, width = image.shape
    crop_h, crop_w = max(4, height // ZOOM), max(4, width // ZOOM)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return image[:, top : top + crop_h, left : left + crop_w]


def _strongest_figure(strongest: list[Strongest], size: str, path: Path) -> None:
    from matplotlib.figure import Figure

    from lightning_checkerboard.functional import figure_to_array

    columns = 2 * min(len(strongest), _PAIRS_PER_ROW)
    rows = math.ceil(len(strongest) / _PAIRS_PER_ROW)
    figure = Figure(figsize=(1.8 * columns, 2.2 * rows + 0.3), dpi=100)
    for i, item in enumerate(strongest):
        for j, (picture, title) in enumerate(
            ((item.image, f"{Path(item.label).name[-22:]}\n{item.amplitude:.2f} levels"),
             (_zoom(item.image), f"\n{ZOOM}x zoom"))
        ):
            axes = figure.add_subplot(rows, columns, 2 * i + j + 1)
            shown, cmap = _as_display(picture)
            axes.imshow(shown, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
            axes.set_title(title, fontsize=7)
            axes.set_xticks([])
            axes.set_yticks([])
    figure.suptitle(f"Strongest grid patterns, {size} (per-image amplitude, 8-bit levels)", fontsize=9)
    figure.tight_layout()
    figure_to_array(figure, path)


def _plane_figure(planes: dict[str, np.ndarray], size: str, periods: int, path: Path) -> None:
    from matplotlib.figure import Figure

    from lightning_checkerboard.functional import figure_to_array

    figure = Figure(figsize=(4.2 * len(planes), 4.0), dpi=100)
    for i, (name, plane) in enumerate(planes.items()):
        axes = figure.add_subplot(1, len(planes), i + 1)
        shifted = np.fft.fftshift(plane)
        floor = np.finfo(np.float64).tiny
        picture = axes.imshow(np.log10(np.clip(shifted, floor, None)), cmap="magma", extent=(-0.5, 0.5, 0.5, -0.5),
                              interpolation="nearest")
        ticks = np.arange(-0.5, 0.5 + 1e-9, 1.0 / 2**periods)
        axes.set_xticks(ticks, [f"{t:g}" for t in ticks], fontsize=6)
        axes.set_yticks(ticks, [f"{t:g}" for t in ticks], fontsize=6)
        axes.set_xlabel("cycles per pixel")
        axes.set_title(f"{name}: log10 mean power", fontsize=9)
        figure.colorbar(picture, ax=axes, fraction=0.046)
    figure.suptitle(f"Mean 2-D power spectrum, {size} (ticks: grid of periods up to {2**periods})", fontsize=9)
    figure.tight_layout()
    figure_to_array(figure, path)


def write_figures(run: ScoreRun, folder: str | Path) -> list[Path]:
    """Draw every group's figures into ``folder`` (created); returns the files written.

    Args:
        run: a run scored with ``spectra=True`` (and ``top > 0`` for the strongest images).
        folder: the output folder.
    """
    from lightning_checkerboard.functional import plot_spectra

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for measurement in run.measurements:
        h, w = measurement.result["size"]
        size = f"{h}x{w}"
        data: GroupFigures = measurement.figures
        if data.radial and min(h, w) >= 4:
            path = folder / f"spectra-{size}.png"
            plot_spectra(data.radial, path, title=f"Mean power spectrum, {size}")
            written.append(path)
        if data.plane:
            path = folder / f"spectrum2d-{size}.png"
            _plane_figure(data.plane, size, run.plan.levels, path)
            written.append(path)
        if data.strongest:
            path = folder / f"strongest-{size}.png"
            _strongest_figure(data.strongest, size, path)
            written.append(path)
    return written
