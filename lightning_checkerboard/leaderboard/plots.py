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

__all__ = ["quality_artifact_scatter"]


_MAX_LABEL = 40  # legend and title characters; longer names are cut so the axes keep their room


def _short(text: str) -> str:
    return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "…"


def _finite(values: Sequence[object]) -> list[float]:
    return [float(v) for v in values
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def quality_artifact_scatter(
    series: Sequence[tuple[str, Sequence[object], Sequence[object], bool]],
    quality_label: str,
    artifact_label: str = "checkerboard score (8-bit levels)",
    title: str = "",
    dpi: int = 100,
) -> bytes:
    """PNG of one point per seed and mean ± std per row: artifacts on x, quality on y.

    Args:
        series: per row ``(label, artifact values, quality values, learned)``, one value per seed in
            the same order; rows that did not learn are drawn hollow and labelled so.
        quality_label: the y axis (the table's primary metric, with its direction).
        artifact_label: the x axis.
        title: figure title.
        dpi: resolution.

    Example:
        >>> png = quality_artifact_scatter([("deconv", [3.0, 4.0], [2.0, 2.5], True)], "SWD (lower is better)")
        >>> png[:4] == b"\\x89PNG"
        True
    """
    import matplotlib

    with matplotlib.rc_context({"text.usetex": False}):
        return _scatter(series, quality_label, artifact_label, title, dpi)


def _scatter(series, quality_label: str, artifact_label: str, title: str, dpi: int) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.4), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for index, (label, artifacts, quality, learned) in enumerate(series):
        pairs = [(float(a), float(q)) for a, q in zip(artifacts, quality)
                 if _finite([a]) and _finite([q])]
        if not pairs:
            continue
        colour = f"C{index % 10}"
        xs, ys = zip(*pairs)
        face = colour if learned is not False else "none"
        axes.scatter(xs, ys, s=18, color=colour, facecolors=face, alpha=0.6, linewidths=1)
        x_mean, y_mean = statistics.fmean(xs), statistics.fmean(ys)
        x_err = statistics.stdev(xs) if len(xs) > 1 else 0.0
        y_err = statistics.stdev(ys) if len(ys) > 1 else 0.0
        name = _short(label) if learned is not False else f"{_short(label)} (did not learn)"
        axes.errorbar([x_mean], [y_mean], xerr=[x_err], yerr=[y_err], fmt="o", color=colour,
                      mfc=face, markersize=7, capsize=3, label=name)
    axes.set_xlabel(artifact_label, parse_math=False, usetex=False)
    axes.set_ylabel(quality_label, parse_math=False, usetex=False)
    if title:
        axes.set_title(_short(title), fontsize=10, parse_math=False, usetex=False)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        legend = axes.legend(fontsize=7, loc="best")
        for text in legend.get_texts():  # the labels are upsampler specs from records
            text.set_parse_math(False)
            text.set_usetex(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
