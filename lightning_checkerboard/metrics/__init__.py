"""torchmetrics Metrics for upsampling artifacts: checkerboard score, spectral distance, FID."""

from lightning_checkerboard.metrics.checkerboard import CheckerboardScore, GradientCheckerboardScore
from lightning_checkerboard.metrics.fid import (
    FID,
    FID_POLICIES,
    FIDUnavailableWarning,
    inception_weights_status,
    resolve_inception_weights,
)
from lightning_checkerboard.metrics.spectral_distance import SpectralDistance

__all__ = [
    "FID",
    "FID_POLICIES",
    "CheckerboardScore",
    "FIDUnavailableWarning",
    "GradientCheckerboardScore",
    "SpectralDistance",
    "inception_weights_status",
    "resolve_inception_weights",
]
