"""The quality-versus-artifacts scatter of a leaderboard table, as PNG bytes (matplotlib, Agg).

Labels come from records (upsampler specs, task and dataset names), which anyone can write. Every
label is drawn as plain text: mathtext is off for each of them (``$…$`` in a name is shown, never
parsed, so a malformed formula cannot end the build) and TeX is off for the whole figure (a
``text.usetex`` setting in the user's matplotlibrc would otherwise run ``latex`` on them).
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from lightning_checkerboard.leaderboard.palette import style_of

__all__ = ["ScatterRow", "quality_artifact_scatter", "scatter_figure"]


_MAX_LABEL = 40  # legend and title characters; longer names are cut so the axes keep their room
# Points at the size the page shows the PNG (its natural size, 100 dpi): 1 pt = 1.39 px, so 8 pt is 11 px.
_FONT, _SMALL = 10, 8


def _short(text: str) -> str:
    return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "…"


def _finite(values: Sequence[object]) -> list[float]:
    return [float(v) for v in values
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


@dataclass
class ScatterRow:
    """One row of the scatter: its seeds' points, or only its mean and std when the seeds are not known.

    Attributes:
        label: the legend text.
        upsampler: the name its colour and marker are keyed by
            (:func:`~lightning_checkerboard.leaderboard.palette.style_of`).
        artifacts, quality: one value per seed, in the same order (may be empty).
        learned: ``False`` draws the row hollow and says so in the legend.
        artifact_mean, artifact_std, quality_mean, quality_std: used when the seeds are not known.
        bound: the row's largest per-seed 95 % bound of the artifact score, drawn as a dashed reach.
    """

    label: str
    upsampler: str
    artifacts: Sequence[object] = ()
    quality: Sequence[object] = ()
    learned: bool | None = None
    artifact_mean: float | None = None
    artifact_std: float | None = None
    quality_mean: float | None = None
    quality_std: float | None = None
    bound: float | None = None


def quality_artifact_scatter(
    series: Sequence[ScatterRow | tuple[str, Sequence[object], Sequence[object], bool]],
    quality_label: str,
    artifact_label: str = "checkerboard score (8-bit levels)",
    title: str = "",
    dpi: int = 100,
    *,
    higher_is_better: bool | None = None,
    reference: tuple[str, float] | None = None,
) -> bytes:
    """PNG of one point per seed and mean ± std per row: artifacts on x (from 0, bounds included), quality on y.

    Each row keeps its upsampler's colour and marker in every plot; its bound is a dashed line from
    its mean to the largest amplitude its seeds cannot rule out. The better corner is marked.

    Args:
        series: the rows, as :class:`ScatterRow` or ``(label, artifact values, quality values, learned)``.
        quality_label: the y axis (the table's primary metric, with its direction).
        artifact_label: the x axis.
        title: figure title.
        dpi: resolution.
        higher_is_better: the quality metric's direction (marks the better corner; ``None``: no mark).
        reference: ``(label, value)`` of a horizontal reference line (bicubic PSNR).

    Example:
        >>> png = quality_artifact_scatter([("deconv", [3.0, 4.0], [2.0, 2.5], True)], "SWD (lower is better)")
        >>> png[:4] == b"\\x89PNG"
        True
    """
    import matplotlib

    rows = [row if isinstance(row, ScatterRow) else ScatterRow(row[0], row[0], row[1], row[2], row[3])
            for row in series]
    with matplotlib.rc_context({"text.usetex": False}):
        return _scatter(rows, quality_label, artifact_label, title, dpi, higher_is_better, reference)


def _points(row: ScatterRow) -> tuple[list[float], list[float]]:
    pairs = [(float(a), float(q)) for a, q in zip(row.artifacts, row.quality) if _finite([a]) and _finite([q])]
    return [a for a, _ in pairs], [q for _, q in pairs]


def _scatter(rows: list[ScatterRow], quality_label: str, artifact_label: str, title: str, dpi: int,
             higher_is_better: bool | None, reference: tuple[str, float] | None) -> bytes:
    figure = scatter_figure(rows, quality_label, artifact_label, title, dpi, higher_is_better, reference)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def scatter_figure(rows: Sequence[ScatterRow], quality_label: str, artifact_label: str = "checkerboard score "
                   "(8-bit levels)", title: str = "", dpi: int = 100, higher_is_better: bool | None = None,
                   reference: tuple[str, float] | None = None):
    """The matplotlib ``Figure`` that :func:`quality_artifact_scatter` saves (its arguments, rows as
    :class:`ScatterRow`); call it inside ``rc_context({"text.usetex": False})`` when labels are untrusted."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    figure = Figure(figsize=(7.2, 4.6), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    right = 0.0
    for row in rows:
        xs, ys = _points(row)
        if xs:
            x_mean, y_mean = statistics.fmean(xs), statistics.fmean(ys)
            x_err = statistics.stdev(xs) if len(xs) > 1 else 0.0
            y_err = statistics.stdev(ys) if len(ys) > 1 else 0.0
        elif _finite([row.artifact_mean]) and _finite([row.quality_mean]):
            x_mean, y_mean = float(row.artifact_mean), float(row.quality_mean)
            x_err = float(row.artifact_std) if _finite([row.artifact_std]) else 0.0
            y_err = float(row.quality_std) if _finite([row.quality_std]) else 0.0
        else:
            continue
        style = style_of(row.upsampler)
        face = style.colour if row.learned is not False else "none"
        if xs:
            axes.scatter(xs, ys, s=22, marker=style.marker, color=style.colour, facecolors=face, alpha=0.45,
                         linewidths=1, clip_on=False)
        name = _short(row.label) if row.learned is not False else f"{_short(row.label)} (did not learn)"
        drawn = axes.errorbar([x_mean], [y_mean], xerr=[x_err], yerr=[y_err], fmt=style.marker, color=style.colour,
                              mfc=face, markersize=8, capsize=3, label=name)
        for artist in drawn.lines[:1]:  # a row at 0 levels sits on the axis: draw it whole
            artist.set_clip_on(False)
        right = max(right, x_mean + x_err, *xs)
        if _finite([row.bound]) and row.bound > x_mean:
            axes.plot([x_mean, row.bound], [y_mean, y_mean], color=style.colour, linestyle=(0, (2, 2)), linewidth=1)
            axes.plot([row.bound], [y_mean], marker="|", markersize=8, color=style.colour)
            right = max(right, float(row.bound))
    axes.set_xlim(0.0, right * 1.08 if right > 0 else 1.0)
    if reference is not None and _finite([reference[1]]):
        axes.axhline(reference[1], color="#555555", linewidth=1, linestyle="--")
        axes.annotate(_short(reference[0]), (1.0, reference[1]), xycoords=("axes fraction", "data"),
                      xytext=(-4, 3), textcoords="offset points", ha="right", va="bottom", fontsize=_SMALL,
                      color="#333333", annotation_clip=False).set_parse_math(False)
    if higher_is_better is not None:
        # The better corner (no checkerboard, best quality) is shaded; points draw over it.
        corner = 0.0 if not higher_is_better else 1.0
        axes.add_patch(Rectangle((0.0, corner - 0.22 * (corner == 1.0)), 0.2, 0.22, transform=axes.transAxes,
                                 facecolor="#2e7d32", alpha=0.08, edgecolor="none", zorder=0))
        axes.text(0.01, 0.985 if higher_is_better else 0.015, "better", transform=axes.transAxes, fontsize=_SMALL,
                  color="#2e7d32", ha="left", va="top" if higher_is_better else "bottom", zorder=0)
    axes.set_xlabel(artifact_label, parse_math=False, usetex=False, fontsize=_FONT)
    axes.set_ylabel(quality_label, parse_math=False, usetex=False, fontsize=_FONT)
    axes.tick_params(labelsize=_FONT)
    if title:
        axes.set_title(_short(title), fontsize=_FONT, parse_math=False, usetex=False)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        legend = axes.legend(fontsize=_SMALL, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
                             frameon=False)
        for text in legend.get_texts():  # the labels are upsampler specs from records
            text.set_parse_math(False)
            text.set_usetex(False)
    figure.tight_layout()
    return figure
