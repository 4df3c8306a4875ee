"""The spectral distance: broadband error of generated images' radial power spectrum (torch only).

:func:`spectral_distance` compares two mean radial spectra
(:func:`~lightning_checkerboard.functional.spectrum.radial_power_spectrum` averaged over images).
``_spectral_distance_update`` sums the radial spectra of one batch and ``_spectral_distance_compute``
turns the summed spectra of generated and real images into that distance;
:class:`~lightning_checkerboard.metrics.SpectralDistance` accumulates a dataset with the pair.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_checkerboard.functional.spectrum import _windowed_power, azimuthal_average

__all__ = ["spectral_distance"]


def spectral_distance(generated_spectrum: Tensor, real_spectrum: Tensor) -> Tensor:
    """Mean ``|clamp(gen / real - 1, -1, 1)|`` over the upper half of the frequencies.

    The inputs are dataset-mean radial spectra
    (:func:`~lightning_checkerboard.functional.spectrum.radial_power_spectrum` averaged over images).
    The upper half is the bins at or above half the Nyquist frequency, where upsampling artifacts and
    lost detail live; clamping keeps one bin with almost no real power from dominating. 0 for equal
    spectra, at most 1.

    Args:
        generated_spectrum: mean radial spectrum of generated images.
        real_spectrum: mean radial spectrum of real images.

    Shape:
        - Input: ``(num_bins,)`` each.
        - Output: scalar.

    Raises:
        ValueError: if the shapes differ.

    Example:
        >>> real = torch.ones(9)
        >>> spectral_distance(real * 0.5, real)
        tensor(0.5000)
    """
    if generated_spectrum.shape != real_spectrum.shape or generated_spectrum.ndim != 1:
        raise ValueError(
            "`generated_spectrum` and `real_spectrum` must be 1-D of the same length, got shapes "
            f"{tuple(generated_spectrum.shape)} and {tuple(real_spectrum.shape)}"
        )
    num_bins = real_spectrum.shape[0]
    upper = slice(math.ceil((num_bins - 1) / 2), num_bins)
    tiny = torch.finfo(real_spectrum.dtype).tiny
    error = (generated_spectrum[upper] / real_spectrum[upper].clamp_min(tiny) - 1).clamp(-1, 1)
    return error.abs().mean()


def _spectral_distance_update(images: Tensor, num_bins: int | None) -> Tensor:
    """Radial power spectra of one checked batch in [0, 1], summed over its images: ``(num_bins,)``."""
    power, _ = _windowed_power(images)
    return azimuthal_average(power, images.shape[-1], num_bins).sum(0)


def _spectral_distance_compute(
    generated_sum: Tensor, real_sum: Tensor, generated_count: Tensor | int, real_count: Tensor | int
) -> Tensor:
    """:func:`spectral_distance` of the mean spectra, from summed spectra and image counts.

    Raises:
        ValueError: if either set holds no image.
    """
    if generated_count == 0 or real_count == 0:
        raise ValueError(
            "SpectralDistance needs both real and generated images, got "
            f"{int(real_count)} real and {int(generated_count)} generated"
        )
    return spectral_distance(generated_sum / generated_count, real_sum / real_count)
