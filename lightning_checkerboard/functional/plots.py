"""Figures of spectra and per-period PNR, as RGB arrays ready for ``wandb.Image`` (matplotlib, Agg).

Figures are drawn on a :class:`matplotlib.figure.Figure` with an Agg canvas, never through pyplot, so
they work without a display, in threads and in workers, and leave no global figure state behind.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["figure_to_array", "plot_period_pnr", "plot_spectra"]


def figure_to_array(figure: object, path: str | os.PathLike | None = None) -> np.ndarray:
    """Render a matplotlib figure to an ``(H, W, 3)`` uint8 array, optionally saving it as PNG too.

    Args:
        figure: a :class:`matplotlib.figure.Figure` with an Agg canvas.
        path: where to save a PNG copy (parent folders are created); ``None`` saves nothing.

    Example:
        >>> from matplotlib.figure import Figure
        >>> figure_to_array(Figure(figsize=(2, 1), dpi=50)).shape
        (50, 100, 3)
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        figure.savefig(path, format="png")
    return np.ascontiguousarray(rgba[..., :3])


def _as_numpy(values: Tensor | Sequence[float] | np.ndarray) -> np.ndarray:
    if isinstance(values, Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    return np.asarray(values, dtype=np.float64)


def plot_spectra(
    spectra: Mapping[str, Tensor | Sequence[float] | np.ndarray],
    path: str | os.PathLike | None = None,
    title: str = "Power spectrum",
    dpi: int = 100,
) -> np.ndarray:
    """Azimuthally averaged spectra (e.g. real vs generated), log power against ``f / f_Nyquist``.

    Bin ``j`` of ``n`` is drawn at ``j / (n - 1)``, the convention of
    :func:`~lightning_checkerboard.functional.spectrum.azimuthal_average`. DC (bin 0, whose power the
    mean subtraction removes) is left out of the log plot.

    Args:
        spectra: label -> 1-D radial spectrum, e.g. ``{"real": real, "generated": gen}`` from
            :meth:`~lightning_checkerboard.metrics.SpectralDistance.spectra`.
        path: optional PNG path.
        title: figure title.
        dpi: resolution of the 6.4 x 4 inch figure.

    Returns:
        ``(H, W, 3)`` uint8 array.

    Raises:
        ValueError: if ``spectra`` is empty or a spectrum is not 1-D with at least 2 bins.

    Example:
        >>> image = plot_spectra({"real": torch.logspace(0, -3, 17), "generated": torch.logspace(0, -2, 17)})
        >>> image.shape, image.dtype
        ((400, 640, 3), dtype('uint8'))
    """
    from matplotlib.figure import Figure

    if not spectra:
        raise ValueError("`spectra` must map at least one label to a spectrum, got an empty mapping")
    figure = Figure(figsize=(6.4, 4.0), dpi=dpi)
    axes = figure.add_subplot()
    for label, values in spectra.items():
        power = _as_numpy(values)
        if power.ndim != 1 or power.size < 2:
            raise ValueError(f"spectrum {label!r} must be 1-D with at least 2 bins, got shape {power.shape}")
        frequency = np.arange(power.size) / (power.size - 1)
        axes.semilogy(frequency[1:], np.clip(power[1:], np.finfo(np.float64).tiny, None), label=str(label))
    axes.set_xlabel("f / f_Nyquist")
    axes.set_ylabel("power")
    axes.set_xlim(0, 1)
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return figure_to_array(figure, path)


def plot_period_pnr(
    pnr_db: Mapping[str, Tensor | Sequence[float] | np.ndarray] | Tensor | Sequence[float] | np.ndarray,
    path: str | os.PathLike | None = None,
    title: str = "Peak-to-reference ratio per period",
    dpi: int = 100,
) -> np.ndarray:
    """Bars of the per-period PNR in dB (periods 2, 4, ..., ``2**L``), one group per series.

    Args:
        pnr_db: the ``L`` values of one series, or label -> values to compare several (e.g. one per
            upsampler), such as the ``pnr_db_period_*`` entries of
            :meth:`~lightning_checkerboard.metrics.CheckerboardScore.diagnostics`.
        path: optional PNG path.
        title: figure title.
        dpi: resolution of the 6.4 x 4 inch figure.

    Returns:
        ``(H, W, 3)`` uint8 array.

    Raises:
        ValueError: if there is no series, a series is empty or not 1-D, or series differ in length.

    Example:
        >>> plot_period_pnr({"deconv": [9.5, 3.1, 0.2], "nearest_conv": [-0.4, -0.3, -0.5]}).shape
        (400, 640, 3)
    """
    from matplotlib.figure import Figure

    series = dict(pnr_db) if isinstance(pnr_db, Mapping) else {"PNR": pnr_db}
    if not series:
        raise ValueError("`pnr_db` must hold at least one series, got an empty mapping")
    arrays = {label: _as_numpy(values) for label, values in series.items()}
    lengths = {values.shape for values in arrays.values()}
    if len(lengths) != 1 or next(iter(lengths)) == (0,) or len(next(iter(lengths))) != 1:
        raise ValueError(f"every PNR series must be 1-D and of the same non-zero length, got shapes {sorted(lengths)}")
    levels = next(iter(lengths))[0]
    figure = Figure(figsize=(6.4, 4.0), dpi=dpi)
    axes = figure.add_subplot()
    width = 0.8 / len(arrays)
    positions = np.arange(levels)
    for i, (label, values) in enumerate(arrays.items()):
        axes.bar(positions + (i - (len(arrays) - 1) / 2) * width, values, width, label=str(label))
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.set_xticks(positions, [str(2 ** (level + 1)) for level in range(levels)])
    axes.set_xlabel("period (pixels)")
    axes.set_ylabel("PNR (dB)")
    axes.set_title(title)
    if len(arrays) > 1:
        axes.legend()
    figure.tight_layout()
    return figure_to_array(figure, path)
