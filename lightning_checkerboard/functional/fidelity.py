"""Fidelity to a reference image as the super-resolution literature measures it: luma and a cropped border.

PSNR and SSIM of super-resolved images are reported on the luma channel ``Y`` of ITU-R BT.601 (the
``Y`` of MATLAB's ``rgb2ycbcr``), with a border of ``scale`` pixels cropped from every side, where
convolution padding and the degradation's edge handling leave pixels that say little about the
upsampler. These two functions prepare images for that; the PSNR and SSIM themselves are
torchmetrics'.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["BT601_LUMA", "crop_border", "rgb_to_y"]

#: ``Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in [0, 1]: Y spans [16/255, 235/255].
BT601_LUMA = (65.481, 128.553, 24.966)


def rgb_to_y(images: Tensor) -> Tensor:
    """The BT.601 luma of RGB images in [0, 1], on the same [0, 1] scale (16/255 for black, 235/255 for white).

    Shape:
        - Input: ``(B, 3, H, W)``.
        - Output: ``(B, 1, H, W)``.

    Raises:
        ValueError: if the images do not have 3 channels.

    Example:
        >>> white = torch.ones(1, 3, 2, 2)
        >>> round(float(rgb_to_y(white)[0, 0, 0, 0]) * 255, 3)
        235.0
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"rgb_to_y needs (B, 3, H, W) RGB images; got shape {tuple(images.shape)}.")
    weights = torch.tensor(BT601_LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return 16.0 / 255.0 + (images * weights).sum(dim=1, keepdim=True) / 255.0


def crop_border(images: Tensor, border: int) -> Tensor:
    """``images`` without ``border`` pixels on each side (unchanged for ``border=0``).

    Raises:
        ValueError: a negative border or one that leaves no pixel.

    Example:
        >>> crop_border(torch.zeros(1, 1, 8, 6), 2).shape
        torch.Size([1, 1, 4, 2])
    """
    height, width = images.shape[-2:]
    if isinstance(border, bool) or not isinstance(border, int) or border < 0 or 2 * border >= min(height, width):
        raise ValueError(f"border must be an integer in [0, {(min(height, width) - 1) // 2}] for {height}×{width} "
                         f"images; got {border!r}.")
    return images[..., border : height - border, border : width - border] if border else images
