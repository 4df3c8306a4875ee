"""Hann-windowed power spectra of image batches, full-plane or azimuthally averaged (torch only).

:func:`windowed_power_spectrum` is the spectrum every artifact measure here starts from: the
checkerboard score reads its grid bins (:mod:`lightning_checkerboard.functional.checkerboard`) and the
spectral distance its radial average (:mod:`lightning_checkerboard.functional.spectral_distance`).
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from lightning_checkerboard._validation import check_int
from lightning_checkerboard.functional._validation import check_image_batch, compute_dtype, to_unit_range

__all__ = [
    "azimuthal_average",
    "hann_window_2d",
    "radial_power_spectrum",
    "windowed_power_spectrum",
]


def hann_window_2d(
    height: int, width: int, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> Tensor:
    """Separable periodic Hann window ``w[y, x] = hann(H)[y] * hann(W)[x]``.

    Periodic (not symmetric) so that the DFT of each factor is exactly ``[-1/4, 1/2, -1/4]`` around
    zero: a spectral line on a bin spreads over exactly that bin and its two neighbours per axis.

    Args:
        height: number of rows ``H``.
        width: number of columns ``W``.
        dtype: dtype of the window (default: torch's default float dtype).
        device: device of the window.

    Shape:
        - Output: ``(H, W)``.

    Example:
        >>> w = hann_window_2d(8, 8, dtype=torch.float64)
        >>> round(float((w**2).sum()), 6)  # H * W * (3/8)**2
        9.0
    """
    rows = torch.hann_window(height, periodic=True, dtype=dtype, device=device)
    cols = torch.hann_window(width, periodic=True, dtype=dtype, device=device)
    return rows[:, None] * cols[None, :]


def _full_plane(power: Tensor, width: int) -> Tensor:
    """Rebuild the full ``(.., H, W)`` plane from an ``rfft2`` half plane using ``P(-k) = P(k)``."""
    height = power.shape[-2]
    negative_rows = (-torch.arange(height, device=power.device)) % height
    missing = power.index_select(-2, negative_rows)[..., 1 : width - width // 2].flip(-1)
    return torch.cat([power, missing], dim=-1)


def windowed_power_spectrum(images: Tensor, *, onesided: bool = True) -> Tensor:
    """Hann-windowed power spectrum, averaged over channels.

    Per image and channel the mean is subtracted, the result multiplied by :func:`hann_window_2d`
    and transformed with one batched ``rfft2``; ``P(k) = mean_c |DFT|**2``. Averaging *power* over
    channels keeps patterns that are out of phase across R, G and B, which a conversion to luminance
    would cancel. The DFT is unnormalised, so a pattern of mean square ``a**2`` adds
    ``a**2 * H * W * sum(w**2)`` of power (Parseval).

    Args:
        images: float batch (any float dtype; half precision is computed in float32). Values are not
            range-checked here.
        onesided: return the ``rfft2`` half plane (default) or the full plane.

    Shape:
        - Input: ``(B, C, H, W)``.
        - Output: ``(B, H, W // 2 + 1)`` if ``onesided`` else ``(B, H, W)``.

    Raises:
        TypeError: if ``images`` is not a float or uint8 tensor.
        ValueError: if ``images`` is not 4-D or holds NaN/inf.

    Example:
        >>> x = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
        >>> x[..., ::2, ::2] = 1.0  # period-2 grid: lines at (0, 4), (4, 0) and (4, 4)
        >>> p = windowed_power_spectrum(x, onesided=False)
        >>> p.shape
        torch.Size([1, 8, 8])
        >>> [round(float(p[0, u, v]), 4) for u, v in [(4, 4), (0, 4), (4, 0), (2, 2)]]
        [16.0, 16.0, 16.0, 0.0]
    """
    check_image_batch(images)
    power, _ = _windowed_power(images)
    return power if onesided else _full_plane(power, images.shape[-1])


def _windowed_spectrum(images: Tensor) -> tuple[Tensor, Tensor]:
    """The complex ``rfft2`` of each centred, Hann-windowed channel, ``(B, C, H, W // 2 + 1)``, and the
    per-image pixel variance.

    The variance (around each image's and channel's mean, averaged over channels) comes from the
    centred images at the cost of one more pass, instead of a separate ``var`` over the batch.
    """
    height, width = images.shape[-2:]
    x = images.to(compute_dtype(images.dtype))
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    pixel_variance = x.square().mean(dim=(1, 2, 3))
    x = x * hann_window_2d(height, width, dtype=x.dtype, device=x.device)
    return torch.fft.rfft2(x), pixel_variance


def _power(spectrum: Tensor) -> Tensor:
    """``|DFT|**2`` averaged over channels: real**2 + imag**2 on the strided views, no abs, no copy."""
    return (spectrum.real.square() + spectrum.imag.square()).mean(dim=1)


def _windowed_power(images: Tensor) -> tuple[Tensor, Tensor]:
    """Unchecked core of :func:`windowed_power_spectrum`; also returns the per-image pixel variance."""
    spectrum, pixel_variance = _windowed_spectrum(images)
    return _power(spectrum), pixel_variance


@lru_cache(maxsize=64)
def _radial_bins(height: int, width: int, num_bins: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Radial bin of every half-plane frequency (``num_bins`` = outside), its weight and the bin populations."""
    # |frequency| / f_Nyquist per axis: the Nyquist row (u = H/2) gets 1, the end of the spectrum.
    fu = torch.minimum(torch.arange(height), height - torch.arange(height)).double() / (height / 2)
    fv = torch.arange(width // 2 + 1).double() / (width / 2)
    radius = (fu[:, None].square() + fv[None, :].square()).sqrt()
    index = torch.round(radius * (num_bins - 1)).long()
    # Beyond the Nyquist circle frequencies exist only towards the corners: left out, not piled on.
    index = torch.where(index < num_bins, index, torch.full_like(index, num_bins)).flatten()
    # Columns 1 .. ceil(W/2)-1 of the half plane stand for two full-plane bins each (k and -k).
    weight = torch.ones(height, width // 2 + 1, dtype=torch.float64)
    weight[:, 1 : width - width // 2] = 2.0
    weight = weight.flatten()
    counts = torch.zeros(num_bins + 1, dtype=torch.float64).index_add_(0, index, weight)[:num_bins]
    return index.to(device), weight.to(device), counts.to(device)


def azimuthal_average(power: Tensor, width: int, num_bins: int | None = None) -> Tensor:
    """Azimuthal (radial) average of a one-sided power spectrum, over the full plane.

    Bin ``j`` holds the frequencies whose radius ``sqrt(fu**2 + fv**2) / f_Nyquist`` rounds to
    ``j / (num_bins - 1)``, so bin 0 is DC and the last bin the Nyquist frequency; with the default
    ``num_bins = min(H, W) // 2 + 1`` the bins are integer radii. Frequencies are signed
    (``u`` and ``H - u`` are the same radius), so the Nyquist row and column land at the end of the
    spectrum, not next to DC. The corners beyond the Nyquist circle are left out.

    Args:
        power: one-sided spectrum from :func:`windowed_power_spectrum`.
        width: the image width ``W`` (the half plane does not say whether ``W`` was odd).
        num_bins: number of radial bins; at most ``min(H, W) // 2 + 1`` so none is empty.

    Shape:
        - Input: ``(..., H, W // 2 + 1)``.
        - Output: ``(..., num_bins)``.

    Raises:
        ValueError: if ``num_bins`` is below 2 or leaves bins empty, or ``width`` does not match.

    Example:
        >>> azimuthal_average(torch.ones(2, 16, 9), width=16).shape
        torch.Size([2, 9])
    """
    height = power.shape[-2]
    if power.shape[-1] != width // 2 + 1:
        raise ValueError(f"`power` has {power.shape[-1]} columns, which does not match `width`={width}")
    most = min(height, width) // 2 + 1
    if num_bins is None:
        num_bins = most
    # More bins than min(H, W) // 2 + 1 would leave some radii without a frequency.
    num_bins = check_int(num_bins, f"num_bins for {height} x {width} images", minimum=2, maximum=most)
    index, weight, counts = _radial_bins(height, width, num_bins, power.device)
    flat = power.flatten(-2) * weight.to(power.dtype)
    sums = torch.zeros(*flat.shape[:-1], num_bins + 1, dtype=power.dtype, device=power.device)
    sums.index_add_(-1, index, flat)
    return sums[..., :num_bins] / counts.to(power.dtype)


def radial_power_spectrum(images: Tensor, num_bins: int | None = None) -> Tensor:
    """Azimuthally averaged, Hann-windowed power spectrum of each image, averaged over channels.

    Averaging over channels before or after the radial average gives the same result (both linear),
    so the channels are averaged once, in :func:`windowed_power_spectrum`.

    Args:
        images: float in [0, 1] or uint8 (range not checked here).
        num_bins: see :func:`azimuthal_average`.

    Shape:
        - Input: ``(B, C, H, W)``.
        - Output: ``(B, num_bins)``.

    Raises:
        TypeError: if ``images`` is not a float or uint8 tensor.
        ValueError: if ``images`` is not 4-D, holds NaN/inf, or ``num_bins`` is out of range.

    Example:
        >>> radial_power_spectrum(torch.rand(4, 3, 32, 32)).shape
        torch.Size([4, 17])
    """
    check_image_batch(images)
    power, _ = _windowed_power(to_unit_range(images, check_range=False))
    return azimuthal_average(power, images.shape[-1], num_bins)
