"""A small KL autoencoder in the layout of a latent-diffusion VAE, whose decoder upsamples with registry layers.

Plain ``nn.Module``: no Lightning, no losses. The layout follows diffusers' ``AutoencoderKL`` (the
first stage of Stable Diffusion; Rombach et al., 2022) and keeps most of its attribute names
(``encoder.down_blocks``, ``resnets`` of ``norm1``/``conv1``/``norm2``/``conv2``/``conv_shortcut``,
``mid_block``, ``decoder.up_blocks``, ``quant_conv``, ``post_quant_conv`` …), but it is written here
in plain torch: nothing is imported from diffusers, which stays an optional extra of this package
(``adapt``, for fusing its ``Upsample2D``). Where the diffusers decoder has its ``Upsample2D``
(nearest ×2 then a 3×3 convolution, at ``up_blocks[i].upsamplers[0]``), each up stage here ends in
one registered ×2 upsampler, ``up_blocks[i].upsampler``, so ``nearest_conv`` is the diffusers
decoder's own choice and a transposed convolution, a sub-pixel convolution or a content-aware layer
is one string away.

Differences from ``AutoencoderKL``, for speed on a CPU: every stage of the encoder ends with a
stride-2 convolution and every stage of the decoder with an upsampler (so ``len(block_channels)``
stages give a latent stride of ``2 ** len(block_channels)``), the mid blocks have no attention layer,
and the decoder's stages have as many ResNet blocks as the encoder's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_checkerboard._validation import check_positive_int
from lightning_checkerboard.upsamplers import create_upsampler, parse_upsampler_spec

__all__ = ["AutoencoderKL", "AutoencoderOutput", "DEFAULT_BLOCK_CHANNELS", "ResnetBlock"]

#: Channels of each stage, finest first: three stages, a latent stride of 8.
DEFAULT_BLOCK_CHANNELS = (32, 64, 64)
#: The log-variance is clamped to this range before it is used, as in latent diffusion.
LOGVAR_RANGE = (-30.0, 20.0)


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    # The largest group count that divides the channels, at most ``groups`` (diffusers: 32).
    return nn.GroupNorm(math.gcd(groups, channels), channels, eps=1e-6)


class ResnetBlock(nn.Module):
    """GroupNorm → SiLU → 3×3 conv, twice, plus the input (through a 1×1 conv when the width changes).

    Shape:
        - Input: ``(B, in_channels, H, W)``.
        - Output: ``(B, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, norm_groups: int = 32) -> None:
        super().__init__()
        self.norm1 = _norm(in_channels, norm_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = _norm(out_channels, norm_groups)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (x if self.conv_shortcut is None else self.conv_shortcut(x))


class _DownBlock(nn.Module):
    """ResNet blocks, then a stride-2 3×3 convolution (``downsampler``)."""

    def __init__(self, in_channels: int, out_channels: int, layers: int, norm_groups: int) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock(in_channels if i == 0 else out_channels, out_channels, norm_groups) for i in range(layers))
        self.downsampler = nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        return self.downsampler(x)


class _UpBlock(nn.Module):
    """ResNet blocks, then one registered ×2 upsampler (``upsampler``)."""

    def __init__(self, in_channels: int, out_channels: int, layers: int, norm_groups: int, upsampler: str,
                 options: dict) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock(in_channels if i == 0 else out_channels, out_channels, norm_groups) for i in range(layers))
        self.upsampler = create_upsampler(upsampler, out_channels, out_channels, **options)

    def forward(self, x: Tensor) -> Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        return self.upsampler(x)


class _MidBlock(nn.Module):
    """Two ResNet blocks at the latent resolution (diffusers puts an attention layer between them)."""

    def __init__(self, channels: int, norm_groups: int) -> None:
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(channels, channels, norm_groups),
                                      ResnetBlock(channels, channels, norm_groups)])

    def forward(self, x: Tensor) -> Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        return x


class Encoder(nn.Module):
    """Image → ``2 · latent_channels`` maps (mean and log-variance) at ``1 / 2^stages`` of its size."""

    def __init__(self, in_channels: int, latent_channels: int, block_channels: Sequence[int], layers: int,
                 norm_groups: int) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, block_channels[0], 3, padding=1)
        widths = [block_channels[0], *block_channels]
        self.down_blocks = nn.ModuleList(
            _DownBlock(widths[i], widths[i + 1], layers, norm_groups) for i in range(len(block_channels)))
        self.mid_block = _MidBlock(block_channels[-1], norm_groups)
        self.conv_norm_out = _norm(block_channels[-1], norm_groups)
        self.conv_out = nn.Conv2d(block_channels[-1], 2 * latent_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class Decoder(nn.Module):
    """Latent → image: the encoder's stages in reverse, each ending in one registered ×2 upsampler."""

    def __init__(self, out_channels: int, latent_channels: int, block_channels: Sequence[int], layers: int,
                 norm_groups: int, upsamplers: Sequence[str], options: dict) -> None:
        super().__init__()
        widths = list(reversed(block_channels))
        self.conv_in = nn.Conv2d(latent_channels, widths[0], 3, padding=1)
        self.mid_block = _MidBlock(widths[0], norm_groups)
        inputs = [widths[0], *widths]
        self.up_blocks = nn.ModuleList(
            _UpBlock(inputs[i], widths[i], layers, norm_groups, upsamplers[i], options) for i in range(len(widths)))
        self.conv_norm_out = _norm(widths[-1], norm_groups)
        self.conv_out = nn.Conv2d(widths[-1], out_channels, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        x = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            x = block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class AutoencoderOutput(NamedTuple):
    """What :meth:`AutoencoderKL.forward` returns: the reconstruction and the posterior it decoded."""

    reconstruction: Tensor
    mean: Tensor
    logvar: Tensor


class AutoencoderKL(nn.Module):
    """A KL-regularised autoencoder: image ``(B, C, H, W)`` → latent ``(B, latent_channels, H/s, W/s)`` → image.

    The encoder (``encoder``: ``conv_in``, ``down_blocks`` of ResNet blocks with GroupNorm and SiLU
    each ending in a stride-2 convolution, ``mid_block``, then norm, SiLU and ``conv_out``) gives the
    mean and log-variance of a diagonal Gaussian posterior, through a 1×1 ``quant_conv``; the decoder
    (``post_quant_conv``, ``decoder``: ``conv_in``, ``mid_block``, ``up_blocks`` of ResNet blocks each
    ending in a registered ×2 upsampler ``up_blocks[i].upsampler``, then norm, SiLU and ``conv_out``)
    maps a latent back to an image. The latent stride ``s`` is ``2 ** len(block_channels)``.

    Args:
        upsampler: one registered upsampler for every decoder stage, or one per stage (comma-separated
            string or sequence), coarse stage (next to the latent) first.
        channels: image channels in and out.
        latent_channels: channels of the latent (Stable Diffusion's VAE: 4).
        block_channels: width of each stage, finest first; one stage per entry.
        layers_per_block: ResNet blocks per stage.
        norm_groups: GroupNorm groups (the largest divisor of a width up to this).
        upsampler_options: passed to every stage's ``create_upsampler`` (e.g. ``padding``).

    Shape:
        - Input: ``(B, channels, H, W)``, ``H`` and ``W`` multiples of :attr:`latent_stride`.
        - Latent: ``(B, latent_channels, H / s, W / s)``.
        - Output: ``(B, channels, H, W)``.

    Raises:
        ValueError: an unknown upsampler, a per-stage list of the wrong length, non-positive widths,
            or (in ``forward``/``encode``) an input of the wrong shape.

    Example:
        >>> model = AutoencoderKL("nearest_conv,nearest_conv,deconv", block_channels=(8, 8, 8))
        >>> model.latent_stride, model.stage_names
        (8, ['nearest_conv', 'nearest_conv', 'deconv'])
        >>> mean, logvar = model.encode(torch.rand(1, 3, 32, 32))
        >>> mean.shape, model.decode(mean).shape
        (torch.Size([1, 4, 4, 4]), torch.Size([1, 3, 32, 32]))
    """

    def __init__(
        self,
        upsampler: str | Sequence[str] = "nearest_conv",
        *,
        channels: int = 3,
        latent_channels: int = 4,
        block_channels: Sequence[int] = DEFAULT_BLOCK_CHANNELS,
        layers_per_block: int = 1,
        norm_groups: int = 32,
        upsampler_options: dict | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("channels", channels), ("latent_channels", latent_channels),
                            ("layers_per_block", layers_per_block), ("norm_groups", norm_groups)):
            check_positive_int(value, name)
        if isinstance(block_channels, (str, bytes)) or not isinstance(block_channels, Sequence) or not block_channels:
            raise ValueError(f"block_channels must be a non-empty sequence of positive integers; got {block_channels!r}.")
        block_channels = tuple(block_channels)
        for value in block_channels:
            check_positive_int(value, "block_channels")
        self.channels, self.latent_channels, self.block_channels = channels, latent_channels, block_channels
        self.stage_names = parse_upsampler_spec(upsampler, len(block_channels))
        self.encoder = Encoder(channels, latent_channels, block_channels, layers_per_block, norm_groups)
        self.quant_conv = nn.Conv2d(2 * latent_channels, 2 * latent_channels, 1)
        self.post_quant_conv = nn.Conv2d(latent_channels, latent_channels, 1)
        self.decoder = Decoder(channels, latent_channels, block_channels, layers_per_block, norm_groups,
                               self.stage_names, dict(upsampler_options or {}))

    @property
    def latent_stride(self) -> int:
        """How many image pixels one latent pixel spans along each side: ``2 ** stages``."""
        return 2 ** len(self.block_channels)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The posterior's mean and log-variance (clamped to [-30, 20]), each ``(B, latent_channels, H/s, W/s)``.

        Raises:
            ValueError: ``x`` is not ``(B, channels, H, W)`` with sides that are multiples of the latent stride.
        """
        s = self.latent_stride
        if x.dim() != 4 or x.shape[1] != self.channels or x.shape[-2] % s or x.shape[-1] % s:
            raise ValueError(f"AutoencoderKL expects (B, {self.channels}, H, W) with H and W multiples of {s}; "
                             f"got {tuple(x.shape)}.")
        mean, logvar = self.quant_conv(self.encoder(x)).chunk(2, dim=1)
        return mean, logvar.clamp(*LOGVAR_RANGE)

    def decode(self, z: Tensor) -> Tensor:
        """The image of a latent ``(B, latent_channels, h, w)``: ``(B, channels, s·h, s·w)``."""
        return self.decoder(self.post_quant_conv(z))

    def forward(self, x: Tensor, *, sample_posterior: bool = False,
                generator: torch.Generator | None = None) -> AutoencoderOutput:
        """Encode, take the posterior's mean (or, with ``sample_posterior``, a sample from it), decode.

        Args:
            x: images ``(B, channels, H, W)``.
            sample_posterior: decode ``mean + exp(logvar / 2) · ε`` instead of the mean.
            generator: where ``ε`` comes from (on ``x``'s device); ``None``: torch's global generator.
        """
        mean, logvar = self.encode(x)
        z = mean
        if sample_posterior:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            z = mean + torch.exp(0.5 * logvar) * noise
        return AutoencoderOutput(self.decode(z), mean, logvar)
