"""Discriminator input gradients: the article's claim that strided convolutions put checkerboards there.

:func:`gradient_diagnostics` scores a discriminator's input gradient on real images, signed or as
per-pixel energy; :func:`gradient_probe_diagnostics` records both and the phase energy ratio for the
:data:`GRADIENT_CONFIGS` of an untrained discriminator's first layer (:func:`untrained_discriminator`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_checkerboard._validation import check_choice
from lightning_checkerboard.experiments._diagnostics import metric_diagnostics
from lightning_checkerboard.functional.gradients import discriminator_input_gradient, gradient_energy, phase_energy_ratio
from lightning_checkerboard.metrics import GradientCheckerboardScore
from lightning_checkerboard.models.dcgan import DCGANDiscriminator, num_stages_for

__all__ = [
    "GRADIENT_CONFIGS",
    "GRADIENT_QUANTITIES",
    "gradient_diagnostics",
    "gradient_probe_diagnostics",
    "untrained_discriminator",
    "untrained_gradient_diagnostics",
]

#: Discriminator first layers compared by the gradient probe, key → (first stride, first kernel). The
#: keys are what ``leaderboards/gradients.json`` files them under: ``"2"`` is the DCGAN default (4×4,
#: stride 2: even overlap in the backward pass), ``"2k3"`` the article's uneven overlap (3×3, stride 2)
#: and ``"1"`` no stride in the first layer (3×3, stride 1).
GRADIENT_CONFIGS: dict[str, tuple[int, int]] = {"2": (2, 4), "2k3": (2, 3), "1": (1, 3)}

#: What :func:`gradient_diagnostics` scores: the signed gradient, or its per-pixel energy
#: (:func:`~lightning_checkerboard.functional.gradient_energy`).
GRADIENT_QUANTITIES = ("gradient", "energy")


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
            (:func:`~lightning_checkerboard.functional.gradient_energy`), where uneven overlap's pattern lives.

    Raises:
        ValueError: on an unknown ``quantity``.
    """
    check_choice(quantity, "quantity", GRADIENT_QUANTITIES)
    return _gradient_quantity_diagnostics(discriminator_input_gradient(discriminator, real), levels, quantity)


def _gradient_quantity_diagnostics(gradient: Tensor, levels: int, quantity: str) -> dict[str, float]:
    scored = gradient_energy(gradient) if quantity == "energy" else gradient
    return metric_diagnostics(GradientCheckerboardScore(levels=levels), scored)


def gradient_probe_diagnostics(discriminator: nn.Module, real: Tensor, levels: int) -> dict[str, float]:
    """Everything the gradient probe records of one discriminator, from one input gradient.

    The keys of :func:`gradient_diagnostics` for the signed gradient (``score``, ``ratio``,
    ``amplitude_period_{P}``, ``pnr_db_period_{P}``), the same prefixed ``energy_`` for its energy, and
    ``phase_energy_ratio`` (:func:`~lightning_checkerboard.functional.phase_energy_ratio`).

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
