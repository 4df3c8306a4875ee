"""The article's two views of an upsampling layer: overlap maps and the dense matrix.

:func:`overlap_map` counts how many input positions paint each output position of a stack of
transposed convolutions (uneven counts are where checkerboards come from);
:func:`upsampler_matrix` writes any upsampling layer out as the dense linear map it applies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_checkerboard._validation import check_choice, check_int, check_positive_int

__all__ = ["overlap_map", "overlap_ratio", "upsampler_matrix"]


def overlap_map(
    kernel_size: int,
    stride: int = 2,
    layers: int = 1,
    *,
    ndim: int = 1,
    in_size: int = 8,
    region: str = "interior",
) -> Tensor:
    """How many paths from the input paint each output position of stacked transposed convs.

    Every layer is a transposed convolution of an all-ones kernel over an all-ones input, so the
    value at an output position is the number of (input position, kernel tap, …) paths that reach
    it — for one layer, simply how many input positions paint it. ``region="interior"`` crops the
    borders, where fewer inputs exist, and keeps the steady-state pattern that repeats across
    the image; ``"full"`` returns the whole output. In 2-D the map is the outer product of the
    1-D maps, because the all-ones kernel is separable.

    Args:
        kernel_size: the transposed convolution's kernel size.
        stride: its stride (the upsampling factor).
        layers: how many such layers are stacked.
        ndim: 1 or 2.
        in_size: the length of the (all-ones) input along each axis.
        region: ``"interior"`` or ``"full"``.

    Returns:
        An integer-valued float64 tensor of shape ``(L,)`` or ``(L, L)``.

    Raises:
        ValueError: a non-positive size, ``ndim`` not 1 or 2, an unknown ``region``, or an input
            too small to leave an interior.

    Example:
        >>> overlap_map(3, 2).tolist()[:4]
        [2.0, 1.0, 2.0, 1.0]
        >>> overlap_map(4, 2).unique().tolist()
        [2.0]
    """
    for name, value in (("kernel_size", kernel_size), ("stride", stride), ("layers", layers),
                        ("in_size", in_size)):
        check_positive_int(value, name)
    check_int(ndim, "ndim", minimum=1, maximum=2)
    check_choice(region, "region", ("interior", "full"))

    signal = torch.ones(1, 1, in_size, dtype=torch.float64)
    kernel = torch.ones(1, 1, kernel_size, dtype=torch.float64)
    # [lo, hi] tracks the output positions all of whose contributors come from the interior of
    # the previous layer; everything outside it is border effect.
    lo, hi = 0, in_size - 1
    for _ in range(layers):
        signal = F.conv_transpose1d(signal, kernel, stride=stride)
        lo, hi = lo * stride + kernel_size - 1, hi * stride
    line = signal.flatten()
    if region == "interior":
        if hi < lo:
            raise ValueError(
                f"in_size={in_size} leaves no interior after {layers} layer(s) of kernel "
                f"{kernel_size}, stride {stride}; use a larger in_size."
            )
        line = line[lo : hi + 1]
    return torch.outer(line, line) if ndim == 2 else line


def overlap_ratio(kernel_size: int, stride: int = 2, layers: int = 1, *, ndim: int = 1) -> float:
    """Max over min of the interior :func:`overlap_map`: 1.0 means even overlap.

    Example:
        >>> overlap_ratio(3, 2), overlap_ratio(3, 2, ndim=2), overlap_ratio(4, 2)
        (2.0, 4.0, 1.0)
    """
    in_size = max(8, 2 * kernel_size)
    values = overlap_map(kernel_size, stride, layers, ndim=ndim, in_size=in_size)
    return float(values.max() / values.min())


@torch.no_grad()
def upsampler_matrix(layer: nn.Module, in_size: int | tuple[int, int]) -> Tensor:
    """The dense matrix of the linear map an upsampling layer applies (bias removed).

    Column ``j`` is the layer's response to the ``j``-th basis image (channel-major, then rows,
    then columns), minus its response to zero, so an affine layer yields its linear part. This is
    the article's matrix view: weight tying shows up as repeated entries.

    Args:
        layer: a module with ``in_channels``; it must be linear up to a bias (no normalisation in
            training mode, no nonlinearity, not ``content_adaptive`` like ``dysample`` and ``carafe``).
        in_size: the input's spatial size, ``h`` or ``(h, w)``. Keep it small: the matrix has
            ``(C_out·H·W) × (C_in·h·w)`` entries.

    Returns:
        A ``(C_out·H·W, C_in·h·w)`` tensor in the layer's parameter dtype.

    Example:
        >>> from lightning_checkerboard import create_upsampler
        >>> upsampler_matrix(create_upsampler("nearest_conv", 1, 1), 3).shape
        torch.Size([36, 9])
    """
    h, w = (in_size, in_size) if isinstance(in_size, int) else tuple(in_size)
    check_positive_int(h, "in_size")
    check_positive_int(w, "in_size")
    in_channels = getattr(layer, "in_channels", None)
    if not isinstance(in_channels, int):
        raise TypeError(f"layer must expose an integer in_channels; got {type(layer).__name__}.")
    adaptive = next((m for m in layer.modules() if getattr(m, "content_adaptive", False)), None)
    if adaptive is not None:
        raise ValueError(f"{type(adaptive).__name__} is content-adaptive: what it does depends on its input, so it is "
                         "not a linear map and has no matrix.")
    try:
        param = next(layer.parameters())
        dtype, device = param.dtype, param.device
    except StopIteration:
        dtype, device = torch.get_default_dtype(), torch.device("cpu")
    count = in_channels * h * w
    basis = torch.eye(count, dtype=dtype, device=device).reshape(count, in_channels, h, w)
    zero = torch.zeros(1, in_channels, h, w, dtype=dtype, device=device)
    responses = layer(basis) - layer(zero)
    return responses.reshape(count, -1).T.contiguous()
