"""The diagnostics of one batch under a fresh checkerboard metric, as plain floats for reports."""

from __future__ import annotations

from torch import Tensor

from lightning_checkerboard.metrics import CheckerboardScore

__all__ = ["checkerboard_diagnostics", "metric_diagnostics"]


def metric_diagnostics(metric: CheckerboardScore, images: Tensor) -> dict[str, float]:
    """``metric.diagnostics()`` after one update with ``images``, as floats."""
    metric.update(images)
    return {key: float(value) for key, value in metric.diagnostics().items()}


def checkerboard_diagnostics(images: Tensor, levels: int) -> dict[str, float]:
    """:meth:`CheckerboardScore.diagnostics` of one batch ``(B, C, H, W)`` in [0, 1], as floats."""
    return metric_diagnostics(CheckerboardScore(levels=levels), images)
