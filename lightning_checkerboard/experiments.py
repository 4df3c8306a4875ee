"""The measurements behind the article's claims, shared by the recipes that report them and the tests that pin them.

Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts" (Distill, 2016) make three kinds
of claim, each measured here with the project's own tools:

- untrained generators already show checkerboards when they upsample with transposed (or sub-pixel)
  convolutions, and not with resize-convolutions (:func:`init_diagnostics` over :func:`init_configs`);
- uneven overlap comes from kernels not divisible by the stride and compounds through stacks
  (:func:`overlap_ratios`);
- strided convolutions put checkerboards into gradients (:func:`gradient_diagnostics` of a
  discriminator's input gradient on real images, signed or as per-pixel energy, for the
  :data:`GRADIENT_CONFIGS` of its first layer).

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
    "GRADIENT_CONFIGS",
    "GRADIENT_QUANTITIES",
    "checkerboard_diagnostics",
    "init_configs",
    "init_diagnostics",
    "discriminator_input_gradient",
    "far_above",
    "format_mean_std",
    "gradient_diagnostics",
    "gradient_energy",
    "gradient_probe_diagnostics",
    "mean_std",
    "overlap_ratios",
    "phase_energy_ratio",
    "provenance",
    "summarize",
    "untrained_discriminator",
    "untrained_gradient_diagnostics",
    "untrained_samples",
]

#: Single-layer upsamplers whose untrained stacks the article (and ICNR) predict to be pattern-free.
ARTIFACT_FREE_INIT = ("nearest_conv", "bilinear_conv", "pixel_shuffle_icnr", "deconv_blur")

#: Discriminator first layers compared by the gradient probe, key → (first stride, first kernel). The
#: keys are what ``leaderboards/gradients.json`` files them under: ``"2"`` is the DCGAN default (4×4,
#: stride 2: even overlap in the backward pass), ``"2k3"`` the article's uneven overlap (3×3, stride 2)
#: and ``"1"`` no stride in the first layer (3×3, stride 1).
GRADIENT_CONFIGS: dict[str, tuple[int, int]] = {"2": (2, 4), "2k3": (2, 3), "1": (1, 3)}

#: What :func:`gradient_diagnostics` scores: the signed gradient, or its per-pixel energy
#: (:func:`gradient_energy`).
GRADIENT_QUANTITIES = ("gradient", "energy")


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


def gradient_energy(gradient: Tensor) -> Tensor:
    """Per-pixel energy of input gradients: the squares summed over channels.

    Why energy: with uneven overlap (a 3×3, stride-2 first layer) the backward pass sums 1, 2 or 4
    kernel taps into a pixel depending on its phase on the stride grid. Where the gradient arriving
    at that layer changes sign from position to position (as at initialisation), those terms add
    incoherently, so the gradient's *variance* follows the tap count (4 : 2 : 2 : 1 over the 2×2
    phases) while its sign stays random: some pixels get several times the gradient of their
    neighbours. A zero-mean field whose variance is periodic has a flat power spectrum, so a spectral
    score of the signed gradient cannot see that pattern; the energy has the periodic mean as a
    spectral line, which :class:`~lightning_checkerboard.metrics.GradientCheckerboardScore` measures
    (after its per-image normalisation, as the share of the energy map's RMS in grid patterns). A
    coherent, signed pattern (the same sign in every cell) shows in both.

    Args:
        gradient: ``(B, C, H, W)`` float gradients.

    Returns:
        ``(B, 1, H, W)``, non-negative.

    Raises:
        ValueError: if ``gradient`` is not a 4-D float tensor.

    Example:
        >>> gradient_energy(torch.tensor([[[[1.0, -2.0]], [[2.0, 0.0]]]]))
        tensor([[[[5., 4.]]]])
    """
    if not isinstance(gradient, Tensor) or gradient.ndim != 4 or not gradient.is_floating_point():
        shape = tuple(gradient.shape) if isinstance(gradient, Tensor) else type(gradient).__name__
        raise ValueError(f"gradient must be a 4-D float tensor (B, C, H, W); got {shape}.")
    return gradient.square().sum(dim=1, keepdim=True)


def phase_energy_ratio(gradient: Tensor, period: int = 2) -> float:
    """Max/min, over the ``period × period`` pixel phases, of the gradient's mean energy; 1.0 is even.

    A direct, metric-free check of the tap-count picture in :func:`gradient_energy`: a 3×3, stride-2
    first layer with equal taps gives 4 (2 per dimension, as :func:`overlap_ratios` counts them).

    Args:
        gradient: ``(B, C, H, W)`` float gradients, ``H`` and ``W`` divisible by ``period``.
        period: the grid's period in pixels, at least 2.

    Raises:
        ValueError: on a bad ``gradient`` or ``period``.

    Example:
        >>> g = torch.ones(1, 1, 4, 4)
        >>> g[..., ::2, ::2] = 2.0  # one phase in four gets twice the gradient
        >>> phase_energy_ratio(g)
        4.0
    """
    energy = gradient_energy(gradient)
    if isinstance(period, bool) or not isinstance(period, int) or period < 2:
        raise ValueError(f"period must be an integer >= 2; got {period!r}.")
    if energy.shape[-2] % period or energy.shape[-1] % period:
        raise ValueError(f"period must divide the gradient's height and width; got {period} for "
                         f"{tuple(energy.shape[-2:])}.")
    phases = torch.stack([energy[..., i::period, j::period].mean() for i in range(period) for j in range(period)])
    return float(phases.max() / phases.min().clamp_min(torch.finfo(phases.dtype).tiny))


def gradient_diagnostics(discriminator: nn.Module, real: Tensor, levels: int,
                         quantity: str = "gradient") -> dict[str, float]:
    """Gradient checkerboard diagnostics of a discriminator's input gradient on ``real`` images in [0, 1].

    Score (share of the scored map's RMS in grid patterns, 0–1), contrast-free ratio, amplitude and
    PNR per period, from :class:`~lightning_checkerboard.metrics.GradientCheckerboardScore`.

    Args:
        discriminator: maps ``(B, C, H, W)`` images in [-1, 1] to one logit per image.
        real: ``(N, C, H, W)`` images in [0, 1].
        levels: stride-2 stages whose periods (2 … ``2**levels``) are measured.
        quantity: ``"gradient"`` scores the signed gradient; ``"energy"`` its per-pixel energy
            (:func:`gradient_energy`), where uneven overlap's pattern lives.

    Raises:
        ValueError: on an unknown ``quantity``.
    """
    if quantity not in GRADIENT_QUANTITIES:
        raise ValueError(f"quantity must be one of {', '.join(GRADIENT_QUANTITIES)}; got {quantity!r}.")
    return _gradient_quantity_diagnostics(discriminator_input_gradient(discriminator, real), levels, quantity)


def _gradient_quantity_diagnostics(gradient: Tensor, levels: int, quantity: str) -> dict[str, float]:
    scored = gradient_energy(gradient) if quantity == "energy" else gradient
    return _diagnostics(GradientCheckerboardScore(levels=levels), scored)


def gradient_probe_diagnostics(discriminator: nn.Module, real: Tensor, levels: int) -> dict[str, float]:
    """Everything the gradient probe records of one discriminator, from one input gradient.

    The keys of :func:`gradient_diagnostics` for the signed gradient (``score``, ``ratio``,
    ``amplitude_period_{P}``, ``pnr_db_period_{P}``), the same prefixed ``energy_`` for its energy, and
    ``phase_energy_ratio`` (:func:`phase_energy_ratio`).

    Args:
        discriminator: maps ``(B, C, H, W)`` images in [-1, 1] to one logit per image.
        real: ``(N, C, H, W)`` images in [0, 1].
        levels: stride-2 stages whose periods (2 … ``2**levels``) are measured.
    """
    gradient = discriminator_input_gradient(discriminator, real)
    out = _gradient_quantity_diagnostics(gradient, levels, "gradient")
    out.update({f"energy_{key}": value
                for key, value in _gradient_quantity_diagnostics(gradient, levels, "energy").items()})
    out["phase_energy_ratio"] = phase_energy_ratio(gradient)
    return out


def untrained_gradient_diagnostics(real: Tensor, *, first_stride: int, seed: int, base_channels: int = 64,
                                   first_kernel: int | None = None, quantity: str = "gradient") -> dict[str, float]:
    """:func:`gradient_diagnostics` of a freshly initialised DCGAN discriminator at the images' size.

    Periods 2 … ``2**stages`` are measured, one per stride-2 stage of a DCGAN generator of that size.

    Args:
        real: ``(N, C, S, S)`` images in [0, 1].
        first_stride: 1 or 2, the discriminator's first-layer stride.
        seed: seeds the weights.
        base_channels: the discriminator's ``ndf``.
        first_kernel: the first layer's kernel (``None``: 4 with stride 2, 3 with stride 1; 3 with
            stride 2 is the article's uneven overlap).
        quantity: ``"gradient"`` or ``"energy"``, as for :func:`gradient_diagnostics`.

    Example:
        >>> real = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> d = untrained_gradient_diagnostics(real, first_stride=2, first_kernel=3, seed=0, base_channels=8,
        ...                                    quantity="energy")
        >>> 0.0 <= d["score"] <= 1.0
        True
    """
    disc = untrained_discriminator(real, first_stride=first_stride, first_kernel=first_kernel, seed=seed,
                                   base_channels=base_channels)
    return gradient_diagnostics(disc, real, num_stages_for(real.shape[-1]), quantity=quantity)


def untrained_discriminator(real: Tensor, *, first_stride: int, seed: int, base_channels: int = 64,
                            first_kernel: int | None = None) -> DCGANDiscriminator:
    """A freshly initialised DCGAN discriminator for images the size and channels of ``real``.

    Args:
        real: ``(N, C, S, S)`` images (only the shape is read).
        first_stride: 1 or 2.
        seed: seeds the weights (``torch.manual_seed``).
        base_channels: the discriminator's ``ndf``.
        first_kernel: the first layer's kernel, ``None`` for the default.
    """
    torch.manual_seed(seed)
    return DCGANDiscriminator(image_size=real.shape[-1], channels=real.shape[1], base_channels=base_channels,
                              first_stride=first_stride, first_kernel=first_kernel)


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
