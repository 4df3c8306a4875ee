"""What every recorded metric means for a ranking: its label, its direction and its role.

One table that the leaderboard's ranking and columns read, so a metric's direction is declared once.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["METRIC_INFO", "MetricInfo", "QUALITY_METRICS", "metric_info"]


@dataclass(frozen=True)
class MetricInfo:
    """How one recorded metric is read.

    Attributes:
        key: the key in a result record's ``metrics`` (or ``throughput``) mapping.
        label: a short column heading.
        higher_is_better: the metric's direction.
        quality: whether it measures sample quality and may be a table's primary ranking metric.
        source: the record mapping it lives in: ``"metrics"`` or ``"throughput"``.
    """

    key: str
    label: str
    higher_is_better: bool
    quality: bool = False
    source: str = "metrics"

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than value ``b``."""
        return a > b if self.higher_is_better else a < b


# Quality metrics in order of preference: fidelity to an exact reference (super-resolution) before
# distances between distributions, which need no reference and so also exist where one does.
_INFO = (
    MetricInfo("psnr", "PSNR (dB)", higher_is_better=True, quality=True),
    MetricInfo("ssim", "SSIM", higher_is_better=True, quality=True),
    MetricInfo("fid", "FID", higher_is_better=False, quality=True),
    MetricInfo("kid", "KID", higher_is_better=False),
    MetricInfo("precision", "precision", higher_is_better=True),
    MetricInfo("recall", "recall", higher_is_better=True),
    MetricInfo("swd", "SWD", higher_is_better=False, quality=True),
    MetricInfo("heldout_loss", "held-out loss", higher_is_better=False, quality=True),
    MetricInfo("psnr_rgb", "PSNR RGB (dB)", higher_is_better=True),
    MetricInfo("ssim_rgb", "SSIM RGB", higher_is_better=True),
    MetricInfo("psnr_bicubic", "bicubic PSNR (dB)", higher_is_better=True),
    MetricInfo("ssim_bicubic", "bicubic SSIM", higher_is_better=True),
    MetricInfo("residual_checkerboard", "residual checkerboard (levels)", higher_is_better=False),
    MetricInfo("residual_checkerboard_upper", "residual checkerboard 95% bound", higher_is_better=False),
    MetricInfo("checkerboard", "checkerboard (levels)", higher_is_better=False),
    MetricInfo("checkerboard_upper", "checkerboard 95% bound", higher_is_better=False),
    MetricInfo("checkerboard_ratio", "checkerboard ratio", higher_is_better=False),
    MetricInfo("spectral_distance", "spectral distance", higher_is_better=False),
    MetricInfo("gradient_checkerboard", "gradient checkerboard", higher_is_better=False),
    MetricInfo("images_per_second", "images/s", higher_is_better=True, source="throughput"),
    # The error's pattern at each period up to a latent stride of 32 (the autoencoder's ReconstructionMetrics).
    *(MetricInfo(f"residual_{kind}_period_{period}", f"residual {label} at period {period} (levels)",
                 higher_is_better=False)
      for period in (2, 4, 8, 16, 32) for kind, label in (("amplitude", "checkerboard"), ("upper", "95% bound"))),
)

#: Every known metric by key.
METRIC_INFO: dict[str, MetricInfo] = {info.key: info for info in _INFO}
#: Quality metrics, in order of preference as a table's primary metric.
QUALITY_METRICS: tuple[str, ...] = tuple(info.key for info in _INFO if info.quality)


def metric_info(key: str) -> MetricInfo:
    """The :class:`MetricInfo` of ``key``.

    Raises:
        KeyError: for a metric this package does not know, naming the known ones.

    Example:
        >>> metric_info("swd").higher_is_better, metric_info("psnr").higher_is_better
        (False, True)
    """
    try:
        return METRIC_INFO[key]
    except KeyError:
        raise KeyError(f"Unknown metric {key!r}; known: {', '.join(METRIC_INFO)}.") from None
