"""The built-in upsampling layers.

Every layer maps ``(B, in_channels, H, W)`` to ``(B, out_channels, scale*H, scale*W)`` and takes
``(in_channels, out_channels, *, scale=2, ...)``; the registry names below are what users type.

============================  ===========================================================
name                          layer
============================  ===========================================================
``deconv``                    transposed conv, kernel ``2*scale`` (4), stride ``scale``
``deconv_k3``                 transposed conv, kernel ``scale+1`` (3): uneven overlap
``deconv_blur``               ``deconv`` then a fixed binomial blur
``nearest_conv``              nearest resize then 3×3 conv (fused)
``bilinear_conv``             bilinear resize then 3×3 conv (fused)
``pixel_shuffle``             3×3 conv to ``scale²·out`` channels, then pixel shuffle
``pixel_shuffle_icnr``        the same, ICNR-initialised: starts as nearest upsampling
============================  ===========================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_checkerboard._validation import check_choice, check_int, check_positive_int
from lightning_checkerboard.functional.resize_conv import (
    PADDING_MODES,
    RESIZE_MODES,
    bilinear_conv2d,
    nearest_conv2d,
    resize_conv2d_reference,
)
from lightning_checkerboard.upsamplers.registry import register_upsampler

__all__ = [
    "DeconvBlurUpsample",
    "DeconvUpsample",
    "PixelShuffleUpsample",
    "ResizeConvUpsample",
    "Upsampler",
]

IMPLS = ("fused", "reference")
INITS = ("default", "icnr")


class Upsampler(nn.Module):
    """Base class of the built-in layers: stores and checks the uniform constructor arguments.

    ``content_adaptive`` is ``True`` for layers whose weights depend on the input (``dysample``,
    ``carafe``): they are not linear maps, so they have no :func:`upsampler_matrix
    <lightning_checkerboard.functional.upsampler_matrix>`.
    """

    content_adaptive: bool = False

    def __init__(self, in_channels: int, out_channels: int, *, scale: int = 2) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.scale = check_int(scale, "scale", minimum=2)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, scale={self.scale}"


class DeconvUpsample(Upsampler):
    """A transposed convolution with stride ``scale``, padded so the output is exactly ``scale×``.

    Even overlap needs ``kernel_size`` divisible by ``scale`` (the DCGAN default, kernel 4 at
    stride 2); other kernel sizes paint some output phases more often than others.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        scale: upsampling factor (the stride).
        kernel_size: defaults to ``2*scale``; must be at least ``scale``.
        bias: add a learnable bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        scale: int = 2,
        kernel_size: int | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, scale=scale)
        if kernel_size is None:
            kernel_size = 2 * self.scale
        # At least `scale` taps, or some output pixels would get no input at all.
        kernel_size = check_int(kernel_size, "kernel_size", minimum=self.scale)
        # Output size (n-1)·s - 2p + k + op = n·s  <=>  2p - op = k - s, with 0 <= op < s.
        padding = math.ceil((kernel_size - scale) / 2)
        self.conv = nn.ConvTranspose2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=scale,
            padding=padding,
            output_padding=2 * padding - (kernel_size - scale),
            bias=bias,
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


def _binomial_blur_kernel(scale: int) -> Tensor:
    # A box of `scale` taps has zeros at every multiple of 1/scale cycles per pixel, exactly where
    # a stride-`scale` layer puts its periodic pattern; two boxes make a smooth triangle
    # ([1, 2, 1]/4 for scale 2).
    box = torch.ones(1, 1, scale, dtype=torch.float64) / scale
    tri = F.conv1d(box, box, padding=scale - 1).flatten()
    return torch.outer(tri, tri)


class DeconvBlurUpsample(DeconvUpsample):
    """``deconv`` followed by a fixed, non-learnable binomial blur.

    The blur's frequency response is zero at the frequencies where a stride-``scale`` transposed
    convolution leaves its checkerboard, so it removes the pattern at the cost of some sharpness.
    Its border is reflect-padded so edges are not darkened.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        scale: int = 2,
        kernel_size: int | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, scale=scale, kernel_size=kernel_size, bias=bias)
        blur = _binomial_blur_kernel(self.scale).to(torch.get_default_dtype())
        self.register_buffer("blur", blur.expand(out_channels, 1, *blur.shape).clone(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        size = self.blur.shape[-1]
        left, right = (size - 1) // 2, size // 2
        # Reflect needs more than `pad` pixels; a 1-pixel map (scale 2 of a 1×1 input is 2×2) has
        # them, but guard anyway by replicating when the map is tiny.
        mode = "reflect" if min(y.shape[-2:]) > max(left, right) else "replicate"
        y = F.pad(y, (left, right, left, right), mode=mode)
        return F.conv2d(y, self.blur, groups=self.out_channels)


def check_resize_options(mode: str, padding: str) -> None:
    """Raise a ``ValueError`` naming the allowed values for a resize-convolution's ``mode`` or ``padding``."""
    check_choice(mode, "mode", RESIZE_MODES)
    check_choice(padding, "padding", PADDING_MODES)


class ResizeConvUpsample(Upsampler):
    """Resize (nearest or bilinear) then a 3×3 convolution: no uneven overlap by construction.

    ``impl="fused"`` computes the pair as one weight-tied transposed convolution
    (:mod:`lightning_checkerboard.functional.resize_conv`); ``impl="reference"`` resizes, pads and
    convolves. Both give the same output and gradients, and the learnable weight is the 3×3
    kernel either way, so checkpoints are interchangeable. The default is the faster path as
    measured by ``recipes/benchmarks/bench_upsamplers.py`` (``leaderboards/speed.md``): fused wherever it
    exists — for nearest a 4×4 transposed conv, 16 instead of 36 multiplies per input pixel; for
    bilinear a 6×6 one, as many multiplies as the reference but without the 4×-sized intermediate
    (the measured ratios are in ``leaderboards/speed.md``) — and the reference for bilinear at
    scales other than 2.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        mode: ``"nearest"`` or ``"bilinear"``.
        scale: upsampling factor (the fused bilinear path is for ``scale=2``).
        padding: ``"zeros"`` or ``"reflect"`` padding of the resized image before the conv.
        impl: ``"fused"``, ``"reference"``, or ``None``: fused where it exists (every scale for
            nearest, scale 2 for bilinear), else the reference.
        bias: add a learnable bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        mode: str = "nearest",
        scale: int = 2,
        padding: str = "zeros",
        impl: str | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, scale=scale)
        check_resize_options(mode, padding)
        if impl is None:
            impl = "fused" if mode == "nearest" or self.scale == 2 else "reference"
        check_choice(impl, "impl", IMPLS)
        if mode == "bilinear" and impl == "fused" and self.scale != 2:
            raise ValueError(
                f"the fused bilinear path is for scale=2; got scale={self.scale}. "
                "Use impl='reference' for other scales."
            )
        self.mode, self.padding, self.impl = mode, padding, impl
        self.conv = nn.Conv2d(in_channels, out_channels, 3, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        weight, bias = self.conv.weight, self.conv.bias
        if self.impl == "reference":
            return resize_conv2d_reference(
                x, weight, bias, mode=self.mode, scale=self.scale, padding=self.padding
            )
        if self.mode == "nearest":
            return nearest_conv2d(x, weight, bias, scale=self.scale, padding=self.padding)
        return bilinear_conv2d(x, weight, bias, padding=self.padding)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mode={self.mode!r}, padding={self.padding!r}, impl={self.impl!r}"


class PixelShuffleUpsample(Upsampler):
    """Sub-pixel convolution (Shi et al., 2016): a 3×3 conv to ``scale²·out`` channels, then shuffle.

    With ``init="icnr"`` (Aitken et al., 2017) the ``scale²`` sub-kernels of each output channel
    start equal, so at initialisation the layer is exactly nearest upsampling of a 3×3 conv at the
    low resolution — free of checkerboards until training makes the sub-kernels differ.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        scale: upsampling factor.
        init: ``"default"`` (PyTorch's conv init) or ``"icnr"``.
        bias: add a learnable bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        scale: int = 2,
        init: str = "default",
        bias: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, scale=scale)
        check_choice(init, "init", INITS)
        self.init = init
        self.conv = nn.Conv2d(in_channels, out_channels * self.scale**2, 3, padding=1, bias=bias)
        if init == "icnr":
            self.reset_icnr()

    @torch.no_grad()
    def reset_icnr(self, weight_init: Callable[[Tensor], object] | None = None) -> None:
        """Re-initialise so every sub-pixel of an output channel shares one kernel (ICNR).

        Args:
            weight_init: draws the shared ``(out, in, 3, 3)`` kernel in place (default: PyTorch's
                conv init), e.g. a model-wide scheme such as DCGAN's ``N(0, 0.02)``.
        """
        seed = nn.Conv2d(self.in_channels, self.out_channels, 3, padding=1, bias=self.conv.bias is not None)
        seed = seed.to(self.conv.weight)
        if weight_init is not None:
            weight_init(seed.weight)
            if seed.bias is not None:
                seed.bias.zero_()
        # pixel_shuffle reads channel c·s² + k as sub-pixel k of output channel c.
        self.conv.weight.copy_(seed.weight.repeat_interleave(self.scale**2, dim=0))
        if self.conv.bias is not None:
            self.conv.bias.copy_(seed.bias.repeat_interleave(self.scale**2, dim=0))

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(self.conv(x), self.scale)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, init={self.init!r}"


@register_upsampler("deconv")
def deconv(in_channels: int, out_channels: int, *, scale: int = 2, bias: bool = True) -> DeconvUpsample:
    """Transposed convolution, kernel ``2*scale`` (4 at scale 2): the DCGAN default, even overlap."""
    return DeconvUpsample(in_channels, out_channels, scale=scale, bias=bias)


@register_upsampler("deconv_k3")
def deconv_k3(in_channels: int, out_channels: int, *, scale: int = 2, bias: bool = True) -> DeconvUpsample:
    """Transposed convolution, kernel ``scale+1`` (3 at scale 2): uneven overlap, the worst case."""
    return DeconvUpsample(in_channels, out_channels, scale=scale, kernel_size=scale + 1, bias=bias)


@register_upsampler("deconv_blur")
def deconv_blur(in_channels: int, out_channels: int, *, scale: int = 2, bias: bool = True) -> DeconvBlurUpsample:
    """``deconv`` followed by a fixed binomial blur that removes its periodic pattern."""
    return DeconvBlurUpsample(in_channels, out_channels, scale=scale, bias=bias)


@register_upsampler("nearest_conv")
def nearest_conv(
    in_channels: int,
    out_channels: int,
    *,
    scale: int = 2,
    padding: str = "zeros",
    impl: str | None = None,
    bias: bool = True,
) -> ResizeConvUpsample:
    """Nearest resize then a 3×3 conv, computed as a weight-tied transposed conv."""
    return ResizeConvUpsample(
        in_channels, out_channels, mode="nearest", scale=scale, padding=padding, impl=impl, bias=bias
    )


@register_upsampler("bilinear_conv")
def bilinear_conv(
    in_channels: int,
    out_channels: int,
    *,
    scale: int = 2,
    padding: str = "zeros",
    impl: str | None = None,
    bias: bool = True,
) -> ResizeConvUpsample:
    """Bilinear resize then a 3×3 conv, computed as a weight-tied transposed conv at scale 2."""
    return ResizeConvUpsample(
        in_channels, out_channels, mode="bilinear", scale=scale, padding=padding, impl=impl, bias=bias
    )


@register_upsampler("pixel_shuffle")
def pixel_shuffle(in_channels: int, out_channels: int, *, scale: int = 2, bias: bool = True) -> PixelShuffleUpsample:
    """Sub-pixel convolution with PyTorch's default init (Shi et al., 2016)."""
    return PixelShuffleUpsample(in_channels, out_channels, scale=scale, bias=bias)


@register_upsampler("pixel_shuffle_icnr")
def pixel_shuffle_icnr(
    in_channels: int, out_channels: int, *, scale: int = 2, bias: bool = True
) -> PixelShuffleUpsample:
    """Sub-pixel convolution with ICNR init (Aitken et al., 2017): starts as nearest upsampling."""
    return PixelShuffleUpsample(in_channels, out_channels, scale=scale, init="icnr", bias=bias)
