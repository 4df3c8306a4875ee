"""The super-resolution degradation: bicubic downsampling of high-resolution images, and its bicubic inverse.

A high-resolution (HR) image ``x`` of shape ``(B, C, H, W)`` in [0, 1], with ``H`` and ``W``
divisible by the scale ``s``, becomes its low-resolution (LR) version

    ``LR = clamp(F.interpolate(x, size=(H / s, W / s), mode="bicubic", antialias=True, align_corners=False), 0, 1)``

which is what :func:`downscale` computes. ``antialias=True`` makes PyTorch use the cubic convolution
kernel of Keys (1981) with ``a = -0.5`` (the kernel of MATLAB's ``imresize`` and of PIL, which the
super-resolution literature degrades with), widened by ``s`` so that it low-pass filters before
subsampling; pixel centres are aligned (``align_corners=False``), so LR pixel ``i`` is centred on HR
position ``s·i + (s - 1) / 2``. At the image border the kernel's weights are renormalised over the
pixels inside the image. The cubic kernel overshoots next to sharp edges, so the result is clamped
back into [0, 1]. No noise, blur or compression is added: the degradation is deterministic.

:func:`bicubic_upscale` is the classic baseline every super-resolution network must beat: the same
antialiased cubic kernel (no widening when enlarging, so it is plain ``a = -0.5`` bicubic
interpolation), back to ``(H, W)``, clamped to [0, 1].

Example:
    >>> import torch
    >>> hr = torch.rand(2, 3, 16, 16)
    >>> lr = downscale(hr, 2)
    >>> lr.shape, bicubic_upscale(lr, 2).shape
    (torch.Size([2, 3, 8, 8]), torch.Size([2, 3, 16, 16]))
    >>> downscale(torch.rand(1, 3, 15, 16), 2)
    Traceback (most recent call last):
    ...
    ValueError: the high-resolution image size must be divisible by the scale 2; got 15×16.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from lightning_checkerboard._validation import check_int

__all__ = ["bicubic_upscale", "check_hr_size", "check_scale", "downscale"]


def check_scale(scale: object, name: str = "scale") -> int:
    """``scale`` if it is an integer of at least 2, else a one-line ``ValueError``."""
    return check_int(scale, name, minimum=2)


def check_hr_size(height: int, width: int | None = None, scale: int = 2) -> None:
    """Raise a one-line ``ValueError`` unless both sides of the HR image are divisible by ``scale``.

    Args:
        height: HR height (and width when ``width`` is ``None``).
        width: HR width.
        scale: the super-resolution factor.
    """
    width = height if width is None else width
    scale = check_scale(scale)
    if height % scale or width % scale or height < scale or width < scale:
        raise ValueError(
            f"the high-resolution image size must be divisible by the scale {scale}; got {height}×{width}."
        )


def _check_batch(images: Tensor, name: str) -> None:
    if not isinstance(images, Tensor) or images.dim() != 4 or not images.is_floating_point():
        got = f"shape {tuple(images.shape)}, dtype {images.dtype}" if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"{name} must be a float (B, C, H, W) tensor; got {got}.")


def downscale(hr: Tensor, scale: int) -> Tensor:
    """Low-resolution images: antialiased bicubic downsampling by ``scale``, clamped to [0, 1].

    See the module docstring for the exact definition.

    Args:
        hr: HR images in [0, 1].
        scale: integer factor, at least 2; both sides of ``hr`` must be divisible by it.

    Shape:
        - Input: ``(B, C, H, W)``.
        - Output: ``(B, C, H / scale, W / scale)``.

    Raises:
        ValueError: a scale below 2, sides not divisible by it, or not a float 4-D tensor.
    """
    _check_batch(hr, "hr")
    check_hr_size(hr.shape[-2], hr.shape[-1], scale)
    size = (hr.shape[-2] // scale, hr.shape[-1] // scale)
    return F.interpolate(hr, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def bicubic_upscale(lr: Tensor, scale: int) -> Tensor:
    """The bicubic baseline: ``(Keys a = -0.5)`` bicubic interpolation of ``lr`` by ``scale``, clamped to [0, 1].

    Args:
        lr: LR images in [0, 1].
        scale: integer factor, at least 2.

    Shape:
        - Input: ``(B, C, h, w)``.
        - Output: ``(B, C, scale·h, scale·w)``.

    Raises:
        ValueError: a scale below 2 or not a float 4-D tensor.
    """
    _check_batch(lr, "lr")
    scale = check_scale(scale)
    size = (lr.shape[-2] * scale, lr.shape[-1] * scale)
    return F.interpolate(lr, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
