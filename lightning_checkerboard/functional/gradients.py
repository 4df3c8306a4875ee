"""Input gradients of a discriminator, where the article's "artifacts in gradients" are measured.

:func:`discriminator_input_gradient` takes the gradient; :func:`normalize_gradient` makes it scoreable
like an image (what :class:`~lightning_checkerboard.metrics.GradientCheckerboardScore` does), and
:func:`gradient_energy` / :func:`phase_energy_ratio` read the pattern that uneven overlap leaves in
the gradient's per-pixel energy rather than in its sign.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_checkerboard._validation import check_int
from lightning_checkerboard.functional._validation import check_image_batch, compute_dtype

__all__ = ["discriminator_input_gradient", "gradient_energy", "normalize_gradient", "phase_energy_ratio"]


def discriminator_input_gradient(discriminator: nn.Module, real: Tensor, batch_size: int = 64) -> Tensor:
    """Gradient of the summed logits with respect to the input images, each image on its own.

    The discriminator runs in eval mode so BatchNorm does not mix the images of a batch (each
    gradient is that of its own image); its mode is restored afterwards.

    Args:
        discriminator: maps ``(B, C, H, W)`` images in [-1, 1] to one logit per image.
        real: images in [0, 1] (scaled to [-1, 1] here, as the GAN sees them).
        batch_size: images per backward pass.

    Returns:
        Gradients, the shape of ``real``, on the CPU.

    Example:
        >>> disc = nn.Sequential(nn.Conv2d(3, 1, 4, 2, 1), nn.Flatten(), nn.LazyLinear(1))
        >>> discriminator_input_gradient(disc, torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 3, 8, 8])
    """
    was_training = discriminator.training
    device = next(discriminator.parameters()).device
    discriminator.eval()
    grads = []
    try:
        with torch.enable_grad():
            for chunk in real.split(batch_size):
                x = (chunk.to(device) * 2 - 1).requires_grad_(True)
                (grad,) = torch.autograd.grad(discriminator(x).sum(), x)
                grads.append(grad.detach().cpu())
    finally:
        discriminator.train(was_training)
    return torch.cat(grads)


def normalize_gradient(gradient: Tensor, eps: float = 1e-12) -> Tensor:
    """Normalise a gradient per image so it can be scored like an image: zero mean, unit RMS.

    The mean and RMS are taken over ``(C, H, W)`` of each image (not per channel, so a channel that
    receives more gradient keeps its weight). Scored with ``scale=1`` instead of 255, the checkerboard
    score of the result is the fraction of the gradient's RMS that the grid pattern holds (1 for a pure
    checkerboard), independent of the loss scale. An all-zero gradient stays zero.

    Args:
        gradient: e.g. ``torch.autograd.grad(d_loss, images)[0]`` of a discriminator.
        eps: floor of the RMS, so an all-zero gradient does not divide by zero.

    Shape:
        - Input: ``(B, C, H, W)``.
        - Output: same shape, float32 or float64.

    Raises:
        TypeError: if ``gradient`` is not a float tensor.
        ValueError: if ``gradient`` is not 4-D or holds NaN/inf.

    Example:
        >>> g = normalize_gradient(torch.randn(2, 3, 8, 8) * 1e-6)
        >>> [round(float(v), 4) for v in g.square().mean(dim=(1, 2, 3))]
        [1.0, 1.0]
    """
    check_image_batch(gradient, name="gradient")
    if not gradient.is_floating_point():
        raise TypeError(f"`gradient` must be a float tensor, got dtype {gradient.dtype}")
    g = gradient.to(compute_dtype(gradient.dtype))
    g = g - g.mean(dim=(1, 2, 3), keepdim=True)
    rms = g.square().mean(dim=(1, 2, 3), keepdim=True).sqrt()
    return g / rms.clamp_min(eps)


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
    first layer with equal taps gives 4 (2 per dimension, as
    :func:`~lightning_checkerboard.functional.overlap.overlap_ratio` counts them).

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
    check_int(period, "period", minimum=2)
    if energy.shape[-2] % period or energy.shape[-1] % period:
        raise ValueError(f"period must divide the gradient's height and width; got {period} for "
                         f"{tuple(energy.shape[-2:])}.")
    phases = torch.stack([energy[..., i::period, j::period].mean() for i in range(period) for j in range(period)])
    return float(phases.max() / phases.min().clamp_min(torch.finfo(phases.dtype).tiny))
