"""The measurements behind the article's claims, shared by the recipes that report them and the tests that pin them.

Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts" (Distill, 2016) make three kinds
of claim, each measured here with the project's own tools:

- untrained generators already show checkerboards when they upsample with transposed (or sub-pixel)
  convolutions, and not with resize-convolutions (:func:`init_diagnostics` over :func:`init_configs`);
- uneven overlap comes from kernels not divisible by the stride and compounds through stacks
  (:func:`overlap_ratios`);
- strided convolutions put checkerboards into gradients (:func:`gradient_diagnostics` of a
  discriminator's input gradient on real images).

``recipes/init_probe.py``, ``recipes/gradient_probe.py``, ``recipes/overlap_figures.py`` and
``recipes/article_report.py`` print these numbers; ``tests/test_article_claims.py`` asserts them.
Only torch and the package's own models and metrics are used (no Lightning).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import statistics
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from lightning_checkerboard.functional.gradients import discriminator_input_gradient
from lightning_checkerboard.functional.overlap import overlap_ratio
from lightning_checkerboard.metrics import CheckerboardScore, GradientCheckerboardScore
from lightning_checkerboard.models.dcgan import DCGANDiscriminator, DCGANGenerator, num_stages_for

__all__ = [
    "ARTIFACT_FREE_INIT",
    "checkerboard_diagnostics",
    "init_configs",
    "init_diagnostics",
    "discriminator_input_gradient",
    "far_above",
    "format_mean_std",
    "gradient_diagnostics",
    "mean_std",
    "overlap_ratios",
    "provenance",
    "summarize",
    "untrained_gradient_diagnostics",
    "untrained_samples",
]

#: Single-layer upsamplers whose untrained stacks the article (and ICNR) predict to be pattern-free.
ARTIFACT_FREE_INIT = ("nearest_conv", "bilinear_conv", "pixel_shuffle_icnr", "deconv_blur")


def init_configs(stages: int) -> dict[str, str]:
    """The article's generator configurations, label → upsampler spec for a ``stages``-stage generator.

    Uniform stacks of every layer the article discusses, plus the mixed stacks of its figure
    ("deconv only in the last layer(s)"), which keep ``nearest_conv`` in the earlier stages.

    Args:
        stages: stride-2 stages of the generator (3 for a DCGAN at 32²); at least 3, so that "the last
            two stages" is not the whole stack.

    Raises:
        ValueError: fewer than three stages.

    Example:
        >>> init_configs(3)["deconv_k3 in the last stage"]
        'nearest_conv,nearest_conv,deconv_k3'
    """
    if isinstance(stages, bool) or not isinstance(stages, int) or stages < 3:
        raise ValueError(f"stages must be an integer >= 3; got {stages!r}.")

    def last(count: int) -> str:
        return ",".join(["nearest_conv"] * (stages - count) + ["deconv_k3"] * count)

    return {
        "all deconv_k3": "deconv_k3",
        "all deconv": "deconv",
        "deconv_k3 in the last two stages": last(2),
        "deconv_k3 in the last stage": last(1),
        "all nearest_conv": "nearest_conv",
        "all bilinear_conv": "bilinear_conv",
        "all pixel_shuffle": "pixel_shuffle",
        "all pixel_shuffle_icnr": "pixel_shuffle_icnr",
        "all deconv_blur": "deconv_blur",
    }


@torch.no_grad()
def untrained_samples(
    upsampler: str,
    *,
    seed: int,
    num_samples: int = 256,
    image_size: int = 32,
    base_channels: int = 32,
) -> Tensor:
    """Images in [0, 1] from a freshly initialised DCGAN generator, BatchNorm in training mode.

    Training mode is what a generator is in when it first paints: its BatchNorm normalises with the
    batch's own statistics, so the output has full contrast (eval mode's unit running variance would
    shrink it and, with it, the absolute score).

    Args:
        upsampler: one registry name for every stage, or one per stage (comma-separated).
        seed: seeds the weights and the noise.
        num_samples: images to generate (one batch).
        image_size: generator output size, 8 … 256.
        base_channels: the generator's ``ngf``.

    Returns:
        ``(num_samples, 3, image_size, image_size)`` float32 in [0, 1].
    """
    torch.manual_seed(seed)
    gen = DCGANGenerator(upsampler, image_size=image_size, base_channels=base_channels).train()
    return (gen(torch.randn(num_samples, gen.latent_dim)) + 1) / 2


def _diagnostics(metric: CheckerboardScore, images: Tensor) -> dict[str, float]:
    metric.update(images)
    return {key: float(value) for key, value in metric.diagnostics().items()}


def checkerboard_diagnostics(images: Tensor, levels: int) -> dict[str, float]:
    """:meth:`CheckerboardScore.diagnostics` of one batch ``(B, C, H, W)`` in [0, 1], as floats."""
    return _diagnostics(CheckerboardScore(levels=levels), images)


def init_diagnostics(upsampler: str, *, seed: int, num_samples: int = 256, image_size: int = 32,
                     base_channels: int = 32) -> dict[str, float]:
    """Checkerboard diagnostics of one untrained generator: score, ratio, amplitude and PNR per period.

    Measures every period the generator's stages can leave (``levels = stages``). Arguments as for
    :func:`untrained_samples`.

    Example:
        >>> d = init_diagnostics("nearest_conv", seed=0, num_samples=32, image_size=16, base_channels=8)
        >>> d["score"], sorted(d)[:3]
        (0.0, ['amplitude_period_2', 'amplitude_period_4', 'pnr_db_period_2'])
    """
    images = untrained_samples(upsampler, seed=seed, num_samples=num_samples, image_size=image_size,
                               base_channels=base_channels)
    return checkerboard_diagnostics(images, num_stages_for(image_size))


def gradient_diagnostics(discriminator: nn.Module, real: Tensor, levels: int) -> dict[str, float]:
    """Gradient checkerboard diagnostics: score (share of the gradient's RMS in grid patterns, 0–1),
    amplitude and PNR per period, of a discriminator's input gradient on ``real`` images in [0, 1]."""
    return _diagnostics(GradientCheckerboardScore(levels=levels), discriminator_input_gradient(discriminator, real))


def untrained_gradient_diagnostics(real: Tensor, *, first_stride: int, seed: int,
                                   base_channels: int = 64) -> dict[str, float]:
    """:func:`gradient_diagnostics` of a freshly initialised DCGAN discriminator at the images' size.

    Periods 2 … ``2**stages`` are measured, one per stride-2 stage of a DCGAN generator of that size.

    Args:
        real: ``(N, C, S, S)`` images in [0, 1].
        first_stride: 1 or 2, the discriminator's first-layer stride.
        seed: seeds the weights.
        base_channels: the discriminator's ``ndf``.
    """
    size = real.shape[-1]
    torch.manual_seed(seed)
    disc = DCGANDiscriminator(image_size=size, channels=real.shape[1], base_channels=base_channels,
                              first_stride=first_stride)
    return gradient_diagnostics(disc, real, num_stages_for(size))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def format_mean_std(stats: Sequence[float], digits: int = 2) -> str:
    """``"m ± s"`` of a :func:`mean_std` pair (or its JSON list).

    Example:
        >>> format_mean_std((2.0, 0.5), 1)
        '2.0 ± 0.5'
    """
    return f"{stats[0]:.{digits}f} ± {stats[1]:.{digits}f}"


def summary_cells(summary: Mapping[str, Sequence[float]], periods: Sequence[int], digits: int = 2) -> str:
    """Markdown cells ``score | amplitude per period | PNR per period`` of a per-config summary.

    Example:
        >>> summary_cells({"score": (1.0, 0.1), "amplitude_period_2": (1.0, 0.1), "pnr_db_period_2": (3.0, 0.5)}, [2])
        '1.00 ± 0.10 | 1.00 ± 0.10 | 3.0 ± 0.5'
    """
    return " | ".join(
        [format_mean_std(summary["score"], digits)]
        + [format_mean_std(summary[f"amplitude_period_{p}"], digits) for p in periods]
        + [format_mean_std(summary[f"pnr_db_period_{p}"], 1) for p in periods]
    )


def provenance(script: str, argv: Sequence[str] | None) -> dict[str, str]:
    """Where and how a report was made: the command that regenerates it, the machine, the date.

    Args:
        script: the recipe's path from the repository root, e.g. ``"recipes/init_probe.py"``.
        argv: the arguments it was given (``None`` or empty for the defaults).
    """
    from lightning_checkerboard import __version__

    return {
        "command": " ".join(["python", script, *(argv or [])]),
        "machine": f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), torch "
                   f"{torch.__version__}, {torch.get_num_threads()} threads, lightning-checkerboard {__version__}",
        "date": dt.date.today().isoformat(),
    }


def summarize(runs: Iterable[Mapping[str, float]]) -> dict[str, tuple[float, float]]:
    """Per-key mean ± std over runs (seeds) of diagnostics dicts with the same keys.

    Example:
        >>> summarize([{"score": 1.0}, {"score": 3.0}])
        {'score': (2.0, 1.4142135623730951)}
    """
    runs = list(runs)
    if not runs:
        raise ValueError("runs must hold at least one diagnostics dict; got none.")
    return {key: mean_std([run[key] for run in runs]) for key in runs[0]}


def overlap_ratios(kernels: Iterable[int] = (3, 4, 5), layers: Iterable[int] = (1, 2, 3), *, stride: int = 2,
                   ndim: int = 2) -> dict[tuple[int, int], float]:
    """Max/min of the interior overlap map, ``(kernel, layers)`` → ratio; 1.0 is even overlap.

    Example:
        >>> overlap_ratios((3, 4), (1,), ndim=1)
        {(3, 1): 2.0, (4, 1): 1.0}
    """
    return {(k, n): overlap_ratio(k, stride, n, ndim=ndim) for k in kernels for n in layers}


def far_above(high: Sequence[float], low: Sequence[float], factor: float = 10.0, floor: float = 1e-3) -> bool:
    """Whether every value of ``high`` exceeds ``factor`` times every value of ``low`` (floored).

    The one predicate behind "far stronger" in the report and the tests; the floor keeps a clean
    side that reads exactly 0 from making any positive value "infinitely" stronger.
    """
    return min(high) > factor * max(max(low), floor) and not math.isnan(min(high))
