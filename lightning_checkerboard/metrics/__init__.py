"""torchmetrics Metrics for upsampling artifacts and sample quality: checkerboard score, spectral distance, SWD, FID."""

from lightning_checkerboard.metrics.checkerboard import CheckerboardScore, GradientCheckerboardScore
from lightning_checkerboard.metrics.fid import (
    FID,
    FID_POLICIES,
    FIDUnavailableWarning,
    inception_weights_status,
    resolve_inception_weights,
)
from lightning_checkerboard.metrics.spectral_distance import SpectralDistance
from lightning_checkerboard.metrics.swd import SlicedWassersteinDistance

__all__ = [
    "FID",
    "FID_POLICIES",
    "CheckerboardScore",
    "FIDUnavailableWarning",
    "GradientCheckerboardScore",
    "SlicedWassersteinDistance",
    "SpectralDistance",
    "inception_weights_status",
    "resolve_inception_weights",
]
