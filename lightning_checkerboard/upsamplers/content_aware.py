"""Upsamplers newer than the article: learned sampling, content-aware kernels, channel-additive resize.

============================  ===========================================================
name                          layer
============================  ===========================================================
``dysample``                  DySample (Liu et al., 2023): bilinear point sampling at
                              positions moved by learned, content-dependent offsets
``carafe``                    CARAFE (Wang et al., 2019): each output pixel reassembles a
                              ``k×k`` input neighbourhood with a kernel predicted from content
``bilinear_additive``         bilinear additive upsampling (Wojna et al., 2019): bilinear
                              resize, sum groups of channels, then a 3×3 conv
============================  ===========================================================

All three take the uniform constructor ``(in_channels, out_channels, *, scale=2, ...)``. DySample and
CARAFE keep channels in their papers; here a 1×1 convolution maps ``in_channels`` to
``out_channels`` when the two differ: after sampling for DySample, whose channel groups sample at
different positions; before reassembly for CARAFE, at the lower resolution where it is cheaper. CARAFE's
kernels are shared by all channels, so the order changes nothing except within ``kernel_size // 2``
input pixels of the border, where zero padding makes the kernels sum to less than one and the channel
map's bias is scaled with them. Everything is plain PyTorch: CARAFE's
reassembly is an ``unfold`` and a batched product, DySample's sampling is ``grid_sample``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_checkerboard._validation import check_choice, check_int
from lightning_checkerboard.functional.resize_conv import PADDING_MODES
from lightning_checkerboard.upsamplers.layers import ResizeConvUpsample, Upsampler
from lightning_checkerboard.upsamplers.registry import register_upsampler

__all__ = ["BilinearAdditiveUpsample", "CarafeUpsample", "DySampleUpsample"]

DYSAMPLE_STYLES = ("lp", "pl")
_DEFAULT_GROUPS = (4, 2, 1)


def _channel_map(in_channels: int, out_channels: int, bias: bool) -> nn.Conv2d | None:
    return None if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1, bias=bias)


class DySampleUpsample(Upsampler):
    """DySample (Liu et al., ICCV 2023): sample the input bilinearly at learned positions.

    A 1×1 convolution predicts, for each of the ``scale²`` sub-pixels of every input pixel and each
    channel group, an offset added to the sub-pixel's own position; the output is the input sampled
    there (``grid_sample``, bilinear, border padding). The offsets reach the output through a pixel
    shuffle, so each sub-pixel phase has its own offset weights — the structure that can leave a
    period-``scale`` pattern. The offset convolution starts near zero (normal, std 0.001), so an
    untrained layer samples where bilinear upsampling does.

    Args:
        in_channels: input channels.
        out_channels: output channels (a 1×1 convolution after sampling when they differ).
        scale: upsampling factor.
        groups: channel groups with their own offsets; default the largest of 4, 2, 1 the channels
            allow (the paper uses 4).
        style: ``"lp"`` (offsets from the low-resolution input, then pixel shuffle) or ``"pl"``
            (pixel-shuffle the input first, then a 1×1 convolution with ``scale²`` times fewer inputs;
            needs ``in_channels`` divisible by ``scale²``).
        dynamic_scope: scale the offsets by a learned ``0.5·sigmoid(·)`` per position (the paper's
            "+" variants) instead of the static factor 0.25.
        bias: bias of the channel-mapping convolution (there is none when ``in_channels ==
            out_channels``).
    """

    content_adaptive = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        scale: int = 2,
        groups: int | None = None,
        style: str = "lp",
        dynamic_scope: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, scale=scale)
        self.style = check_choice(style, "style", DYSAMPLE_STYLES)
        unit = self.scale**2 if style == "pl" else 1
        if style == "pl" and in_channels % unit:
            raise ValueError(
                f"style='pl' needs in_channels divisible by scale² ({unit}); got in_channels={in_channels}."
            )
        if groups is None:
            groups = next(g for g in _DEFAULT_GROUPS if in_channels % g == 0)
        self.groups = check_int(groups, "groups", minimum=1)
        if in_channels % self.groups:
            raise ValueError(f"groups must divide in_channels ({in_channels}); got groups={groups}.")
        self.dynamic_scope = bool(dynamic_scope)
        conv_in = in_channels // unit
        conv_out = 2 * self.groups * self.scale**2 // unit  # "pl": 2·groups per high-resolution pixel
        self.offset = nn.Conv2d(conv_in, conv_out, 1)
        if self.dynamic_scope:
            self.scope = nn.Conv2d(conv_in, conv_out, 1, bias=False)
        self.reset_predictor()
        self.proj = _channel_map(in_channels, out_channels, bias)

    @torch.no_grad()
    def reset_predictor(self) -> None:
        """Restart the offset predictor as designed: offsets near zero (normal, std 0.001), scope 0.

        A model-wide initialisation (e.g. DCGAN's ``N(0, 0.02)`` on every convolution) calls this
        afterwards, so the layer still starts where bilinear upsampling samples.
        """
        nn.init.normal_(self.offset.weight, std=0.001)
        nn.init.zeros_(self.offset.bias)
        if self.dynamic_scope:
            nn.init.zeros_(self.scope.weight)

    def _initial_positions(self, like: Tensor) -> Tensor:
        # Sub-pixel a (along an axis) of input pixel i sits at i + (a + 0.5)/s - 0.5 in input
        # pixel coordinates: ±0.25 at scale 2, where bilinear upsampling samples. Built in the
        # offsets' dtype each call, so a float64 layer holds exact thirds at scale 3.
        s = self.scale
        h = (torch.arange(s, dtype=like.dtype, device=like.device) + 0.5) / s - 0.5
        x_off = h.repeat(s)  # phase p = a·s + c has x offset h[c]
        y_off = h.repeat_interleave(s)  # and y offset h[a]
        pos = torch.stack([x_off.repeat(self.groups), y_off.repeat(self.groups)])  # (2, groups·s²)
        return pos.reshape(1, -1, 1, 1)

    def displacements(self, x: Tensor) -> Tensor:
        """The learned part of :meth:`offsets`: how far each sample moves from bilinear upsampling's position.

        Returns:
            ``(B, 2·groups·scale², H, W)`` in input pixels, laid out as :meth:`offsets`.
        """
        s = self.scale
        if self.style == "pl":
            shuffled = F.pixel_shuffle(x, s)
            raw = F.pixel_unshuffle(self.offset(shuffled), s)
            factor = F.pixel_unshuffle(self.scope(shuffled).sigmoid(), s) * 0.5 if self.dynamic_scope else 0.25
        else:
            raw = self.offset(x)
            factor = self.scope(x).sigmoid() * 0.5 if self.dynamic_scope else 0.25
        return raw * factor

    def offsets(self, x: Tensor) -> Tensor:
        """Sub-pixel positions relative to their input pixel's centre, in input pixels.

        Returns:
            ``(B, 2·groups·scale², H, W)``: channel ``(xy·groups + g)·scale² + a·scale + c`` is the
            x (``xy=0``) or y (``xy=1``) position of sub-pixel ``(a, c)`` of group ``g``.
        """
        moved = self.displacements(x)
        return moved + self._initial_positions(moved)

    def sampling_positions(self, x: Tensor) -> Tensor:
        """Where each output pixel samples the input, in input pixel index coordinates.

        Returns:
            ``(B, groups, scale·H, scale·W, 2)`` float (at least float32), ``(x, y)`` with pixel
            ``k``'s centre at ``k``. Bilinear upsampling's positions are the untrained layer's.
        """
        s, g = self.scale, self.groups
        batch, _, height, width = x.shape
        dtype = torch.promote_types(x.dtype, torch.float32)
        rel = F.pixel_shuffle(self.offsets(x).to(dtype), s).view(batch, 2, g, s * height, s * width)
        base_x = torch.arange(width, device=x.device, dtype=dtype).repeat_interleave(s)
        base_y = torch.arange(height, device=x.device, dtype=dtype).repeat_interleave(s)
        pos_x = rel[:, 0] + base_x
        pos_y = rel[:, 1] + base_y[:, None]
        return torch.stack([pos_x, pos_y], dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        positions = self.sampling_positions(x)
        size = torch.tensor([width, height], device=x.device, dtype=positions.dtype)
        grid = (2 * positions + 1) / size - 1  # align_corners=False normalisation
        grid = grid.flatten(0, 1)
        source = x.to(grid.dtype).reshape(batch * self.groups, channels // self.groups, height, width)
        out = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
        out = out.view(batch, channels, self.scale * height, self.scale * width).to(x.dtype)
        return out if self.proj is None else self.proj(out)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, groups={self.groups}, style={self.style!r}, dynamic_scope={self.dynamic_scope}"


class CarafeUpsample(Upsampler):
    """CARAFE (Wang et al., ICCV 2019): content-aware reassembly of features.

    A 1×1 compressor and a ``encoder_size``×``encoder_size`` encoder predict, for each of the
    ``scale²`` sub-pixels of every input pixel, a ``kernel_size``×``kernel_size`` kernel; a softmax
    makes each sum to one. Each output pixel is its input pixel's neighbourhood weighted by its
    kernel (zero padding at the border). The encoder starts near zero (normal, std 0.001), so an
    untrained layer averages the neighbourhood evenly at every sub-pixel.

    Args:
        in_channels: input channels.
        out_channels: output channels (a 1×1 convolution before reassembly when they differ).
        scale: upsampling factor.
        kernel_size: reassembly kernel size ``k_up`` (odd; the paper uses 5).
        encoder_size: content-encoder kernel size ``k_encoder`` (odd; the paper uses 3).
        compressed_channels: channels after the compressor (the paper uses 64).
        bias: bias of the channel-mapping convolution (there is none when ``in_channels ==
            out_channels``).
    """

    content_adaptive = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        scale: int = 2,
        kernel_size: int = 5,
        encoder_size: int = 3,
        compressed_channels: int = 64,
        bias: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, scale=scale)
        for value, name in ((kernel_size, "kernel_size"), (encoder_size, "encoder_size")):
            if check_int(value, name, minimum=1) % 2 == 0:
                raise ValueError(f"{name} must be an odd positive integer; got {value!r}.")
        self.kernel_size, self.encoder_size = kernel_size, encoder_size
        compressed_channels = check_int(compressed_channels, "compressed_channels", minimum=1)
        self.compressor = nn.Conv2d(in_channels, compressed_channels, 1)
        self.encoder = nn.Conv2d(
            compressed_channels, self.scale**2 * kernel_size**2, encoder_size, padding=encoder_size // 2
        )
        self.reset_predictor()
        self.proj = _channel_map(in_channels, out_channels, bias)

    @torch.no_grad()
    def reset_predictor(self) -> None:
        """Restart the kernel encoder as designed: near zero (normal, std 0.001), so kernels start even.

        A model-wide initialisation (e.g. DCGAN's ``N(0, 0.02)`` on every convolution) calls this
        afterwards.
        """
        nn.init.normal_(self.encoder.weight, std=0.001)
        nn.init.zeros_(self.encoder.bias)

    def kernels(self, x: Tensor) -> Tensor:
        """The reassembly kernels: ``(B, kernel_size², scale·H, scale·W)``, each summing to one."""
        return F.pixel_shuffle(self.encoder(self.compressor(x)), self.scale).softmax(dim=1)

    def forward(self, x: Tensor) -> Tensor:
        s, k = self.scale, self.kernel_size
        features = x if self.proj is None else self.proj(x)
        batch, channels, height, width = features.shape
        weights = self.kernels(x).view(batch, k * k, height, s, width, s)
        patches = F.unfold(features, k, padding=k // 2).view(batch, channels, k * k, height, width)
        out = torch.einsum("bcnhw,bnhawd->bchawd", patches, weights.to(patches.dtype))
        return out.reshape(batch, channels, s * height, s * width)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kernel_size={self.kernel_size}, encoder_size={self.encoder_size}"


class BilinearAdditiveUpsample(Upsampler):
    """Bilinear additive upsampling (Wojna et al., IJCV 2019), followed by a 3×3 convolution.

    Bilinear resize, then sum every ``reduction`` consecutive channels: an upsampling with no
    parameters that also divides the channels. Both steps are linear and act on different axes, so
    they commute; the sum is taken first, at the low resolution, where it is cheaper. With ``conv``
    (the default) a 3×3 convolution maps the reduced channels to ``out_channels`` — the paper's
    decoders follow the upsampling with convolutions, and a generator stage needs learnable weights —
    computed with ``bilinear_conv``'s fused path. Without it the layer has no parameters and
    ``in_channels`` must be ``reduction·out_channels``. With nothing to sum (``in_channels <
    2·out_channels``) the layer is ``bilinear_conv``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        scale: upsampling factor.
        reduction: channels summed per group; default the largest divisor of ``in_channels`` that
            leaves at least ``out_channels`` sums (``in_channels // out_channels`` when that divides
            evenly: 2 for 128 → 64; 8 for 32 → 3, whose 4 sums the convolution maps to 3).
        conv: follow with a 3×3 convolution (``False``: parameter-free; ``padding`` and ``bias``
            then have nothing to apply to).
        padding: the convolution's border padding, ``"zeros"`` or ``"reflect"``.
        bias: bias of the convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        scale: int = 2,
        reduction: int | None = None,
        conv: bool = True,
        padding: str = "zeros",
        bias: bool = True,
    ) -> None:
        super().__init__(in_channels, out_channels, scale=scale)
        if reduction is None:
            # Sum as many channels as divide evenly while leaving at least out_channels of them.
            fits = [r for r in range(1, in_channels + 1) if in_channels % r == 0 and in_channels // r >= out_channels]
            reduction = max(fits, default=1)
        self.reduction = check_int(reduction, "reduction", minimum=1)
        if in_channels % self.reduction:
            raise ValueError(f"reduction must divide in_channels ({in_channels}); got reduction={reduction}.")
        reduced = in_channels // self.reduction
        check_choice(padding, "padding", PADDING_MODES)
        if not conv and reduced != out_channels:
            raise ValueError(
                f"bilinear_additive without conv needs in_channels = reduction·out_channels; got "
                f"in_channels={in_channels}, out_channels={out_channels}, reduction={self.reduction}."
            )
        self.conv = (
            ResizeConvUpsample(reduced, out_channels, mode="bilinear", scale=scale, padding=padding, bias=bias)
            if conv
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        if self.reduction > 1:
            x = x.view(batch, channels // self.reduction, self.reduction, height, width).sum(dim=2)
        if self.conv is not None:
            return self.conv(x)
        return F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, reduction={self.reduction}, conv={self.conv is not None}"


@register_upsampler("dysample")
def dysample(
    in_channels: int,
    out_channels: int,
    *,
    scale: int = 2,
    groups: int | None = None,
    style: str = "lp",
    dynamic_scope: bool = False,
    bias: bool = True,
) -> DySampleUpsample:
    """DySample (Liu et al., 2023): bilinear sampling at positions moved by learned offsets."""
    return DySampleUpsample(
        in_channels, out_channels, scale=scale, groups=groups, style=style, dynamic_scope=dynamic_scope, bias=bias
    )


@register_upsampler("carafe")
def carafe(
    in_channels: int,
    out_channels: int,
    *,
    scale: int = 2,
    kernel_size: int = 5,
    encoder_size: int = 3,
    compressed_channels: int = 64,
    bias: bool = True,
) -> CarafeUpsample:
    """CARAFE (Wang et al., 2019): content-aware reassembly with predicted, normalised kernels."""
    return CarafeUpsample(
        in_channels,
        out_channels,
        scale=scale,
        kernel_size=kernel_size,
        encoder_size=encoder_size,
        compressed_channels=compressed_channels,
        bias=bias,
    )


@register_upsampler("bilinear_additive")
def bilinear_additive(
    in_channels: int,
    out_channels: int,
    *,
    scale: int = 2,
    reduction: int | None = None,
    conv: bool = True,
    padding: str = "zeros",
    bias: bool = True,
) -> BilinearAdditiveUpsample:
    """Bilinear additive upsampling (Wojna et al., 2019): bilinear resize, sum channel groups, 3×3 conv."""
    return BilinearAdditiveUpsample(
        in_channels, out_channels, scale=scale, reduction=reduction, conv=conv, padding=padding, bias=bias
    )
