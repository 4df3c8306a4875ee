"""The layer a fused resize-convolution becomes: a 3×3 conv's parameters, a fused forward.

:class:`~lightning_checkerboard.upsamplers.layers.ResizeConvUpsample` keeps its weight in a ``conv``
child; a model being converted keeps it in the ``nn.Conv2d`` it already has. :class:`FusedResizeConv2d`
holds ``weight`` and ``bias`` directly, as ``nn.Conv2d`` does, so it takes the convolution's place and
every state-dict key stays what it was. The computation is the package's fused one
(:func:`~lightning_checkerboard.functional.resize_conv.nearest_conv2d` and
:func:`~lightning_checkerboard.functional.resize_conv.bilinear_conv2d`).
"""

from __future__ import annotations

from torch import Tensor, nn

from lightning_checkerboard.functional.resize_conv import bilinear_conv2d, nearest_conv2d
from lightning_checkerboard.upsamplers.layers import Upsampler, check_resize_options

__all__ = ["FusedResizeConv2d", "resize_conv2d"]


def resize_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, *, mode: str, scale: int, padding: str) -> Tensor:
    """Resize by ``scale`` (``mode`` nearest or bilinear), pad one pixel, 3×3 conv: the fused path.

    This is what a rewritten ``forward`` calls in place of its interpolate → pad → conv chain.

    Example:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> x, w = torch.randn(1, 2, 4, 4), torch.randn(3, 2, 3, 3)
        >>> plain = F.conv2d(F.interpolate(x, scale_factor=2), w, padding=1)
        >>> torch.allclose(resize_conv2d(x, w, None, mode="nearest", scale=2, padding="zeros"), plain, atol=1e-5)
        True
    """
    if mode == "nearest":
        return nearest_conv2d(x, weight, bias, scale=scale, padding=padding)
    if mode == "bilinear" and scale == 2:
        return bilinear_conv2d(x, weight, bias, padding=padding)
    raise ValueError(f"mode and scale must be 'nearest' (any scale) or 'bilinear' (scale 2); got {mode!r}, {scale!r}.")


class FusedResizeConv2d(Upsampler):
    """Resize then a 3×3 convolution, computed as one weight-tied transposed convolution.

    Holds the parameters of the ``nn.Conv2d(in_channels, out_channels, 3)`` it replaces under the same
    names (``weight``, ``bias``), so a checkpoint of the original model loads into the converted one
    and back. Built by :func:`~lightning_checkerboard.adapt.fuse_resize_conv`; :meth:`from_conv` makes
    one from a convolution, sharing its parameters.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        mode: ``"nearest"`` or ``"bilinear"`` (``align_corners=False``; scale 2 only).
        scale: the resize factor.
        padding: ``"zeros"`` or ``"reflect"``: the one-pixel padding of the resized image.
        bias: add a learnable bias.

    Shape:
        - Input: ``(B, in_channels, H, W)``.
        - Output: ``(B, out_channels, scale*H, scale*W)``.

    Example:
        >>> import torch
        >>> conv = nn.Conv2d(4, 2, 3, padding=1)
        >>> plain = nn.Sequential(nn.Upsample(scale_factor=2), conv)
        >>> fused = FusedResizeConv2d.from_conv(conv, mode="nearest", scale=2, padding="zeros")
        >>> x = torch.randn(1, 4, 5, 5)
        >>> torch.allclose(fused(x), plain(x), atol=1e-5)
        True
        >>> sorted(fused.state_dict()) == sorted(conv.state_dict())
        True
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        mode: str = "nearest",
        scale: int = 2,
        padding: str = "zeros",
        bias: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, scale=scale)
        check_resize_options(mode, padding)
        if mode == "bilinear" and self.scale != 2:
            raise ValueError(f"the fused bilinear path is for scale=2; got scale={self.scale}.")
        self.mode, self.padding = mode, padding
        # Same initialisation and names as the nn.Conv2d this stands in for.
        template = nn.Conv2d(in_channels, out_channels, 3, bias=bias)
        self.weight = template.weight
        self.register_parameter("bias", template.bias)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, *, mode: str, scale: int, padding: str) -> FusedResizeConv2d:
        """The fused layer of ``resize → pad → conv``, sharing ``conv``'s parameter objects."""
        fused = cls(conv.in_channels, conv.out_channels, mode=mode, scale=scale, padding=padding,
                    bias=conv.bias is not None)
        fused.weight = conv.weight
        fused.register_parameter("bias", conv.bias)
        return fused

    def forward(self, x: Tensor) -> Tensor:
        return resize_conv2d(x, self.weight, self.bias, mode=self.mode, scale=self.scale, padding=self.padding)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mode={self.mode!r}, padding={self.padding!r}, bias={self.bias is not None}"

