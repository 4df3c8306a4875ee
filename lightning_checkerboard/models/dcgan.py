"""DCGAN generator and discriminator (Radford et al., 2016) with registry upsamplers.

Plain ``nn.Module``s: no Lightning, no logging. The generator's stride-2 stages come from the
upsampler registry, one name for all of them or one per stage, so the article's mixed stacks
("deconv only in the last layer") are one string.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lightning_checkerboard._validation import check_choice, check_int, check_positive_int
from lightning_checkerboard.upsamplers import create_upsampler, parse_upsampler_spec

__all__ = ["DISCRIMINATOR_NORMS", "DCGANDiscriminator", "DCGANGenerator", "dcgan_init_", "num_stages_for"]

SUPPORTED_SIZES = (8, 16, 32, 64, 128, 256)
#: Normalisations of the discriminator's hidden stages.
DISCRIMINATOR_NORMS = ("batch", "spectral", "none")
_BASE = 4  # the generator's first feature map is 4×4, as in DCGAN


def num_stages_for(image_size: int) -> int:
    """Stride-2 upsampling stages a DCGAN generator needs to reach ``image_size`` from 4×4.

    Raises:
        ValueError: an image size that is not a power of two between 8 and 256.
    """
    check_choice(image_size, "image_size", SUPPORTED_SIZES)  # 4×4 doubled by each stage
    return int(math.log2(image_size // _BASE))


def dcgan_init_(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0.

    Layers that carry an initialisation of their own design re-apply it on top of the normal draw:
    ICNR pixel shuffle still starts as nearest upsampling, and layers with a ``reset_predictor``
    method (``dysample``'s offsets, ``carafe``'s kernel encoder) start as their papers designed.
    """
    for sub in module.modules():
        if isinstance(sub, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(sub.weight, 0.0, 0.02)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, (nn.BatchNorm2d, nn.InstanceNorm2d)) and sub.weight is not None:
            nn.init.normal_(sub.weight, 1.0, 0.02)
            nn.init.zeros_(sub.bias)
    for sub in module.modules():
        if getattr(sub, "init", None) == "icnr":
            sub.reset_icnr(weight_init=lambda w: nn.init.normal_(w, 0.0, 0.02))
        if callable(getattr(sub, "reset_predictor", None)):
            sub.reset_predictor()


class DCGANGenerator(nn.Module):
    """Noise ``(B, latent_dim)`` → image ``(B, channels, image_size, image_size)`` in [-1, 1].

    A 4×4 projection of the noise, then ``log2(image_size / 4)`` upsampling stages, each an
    upsampler from the registry followed by BatchNorm and ReLU (the last by ``tanh``). Channels
    halve at every stage, from ``base_channels · 2^(stages-1)`` (capped at ``max_channels``).

    Args:
        upsampler: one registered name for every stage, or one per stage (comma-separated string
            or sequence).
        image_size: 8, 16, 32, 64, 128 or 256.
        channels: image channels (3 for RGB, 1 for grey).
        latent_dim: noise dimension.
        base_channels: channels before the output stage (DCGAN's ``ngf``).
        max_channels: cap on the widest stage.
        upsampler_options: passed to every stage's ``create_upsampler`` (e.g. ``padding``).

    Raises:
        ValueError: unknown upsampler, a per-stage list of the wrong length, an image size the
            generator cannot produce, or a non-positive size.

    Example:
        >>> g = DCGANGenerator("nearest_conv,nearest_conv,deconv_k3", image_size=32)
        >>> g.stage_names
        ['nearest_conv', 'nearest_conv', 'deconv_k3']
        >>> g(torch.randn(2, g.latent_dim)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        upsampler: str | Sequence[str] = "deconv",
        *,
        image_size: int = 64,
        channels: int = 3,
        latent_dim: int = 100,
        base_channels: int = 64,
        max_channels: int = 512,
        upsampler_options: dict | None = None,
    ) -> None:
        super().__init__()
        stages = num_stages_for(image_size)
        for name, value in (("channels", channels), ("latent_dim", latent_dim),
                            ("base_channels", base_channels), ("max_channels", max_channels)):
            check_positive_int(value, name)
        self.stage_names = parse_upsampler_spec(upsampler, stages)
        self.image_size, self.channels, self.latent_dim = image_size, channels, latent_dim

        widths = [min(base_channels * 2 ** (stages - 1 - i), max_channels) for i in range(stages)]
        self.project = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, widths[0], _BASE, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        options = dict(upsampler_options or {})
        blocks: list[nn.Module] = []
        for i, name in enumerate(self.stage_names):
            last = i == stages - 1
            out = channels if last else widths[i + 1]
            up = create_upsampler(name, widths[i], out, **options)
            tail: list[nn.Module] = [nn.Tanh()] if last else [nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            blocks.append(nn.Sequential(up, *tail))
        self.stages = nn.ModuleList(blocks)
        dcgan_init_(self)

    def forward(self, z: Tensor) -> Tensor:
        x = self.project(z.view(z.shape[0], self.latent_dim, 1, 1))
        for stage in self.stages:
            x = stage(x)
        return x


class DCGANDiscriminator(nn.Module):
    """Image ``(B, channels, S, S)`` → one logit per image.

    The first layer is the article's "artifacts in gradients" knob: its backward pass is a
    transposed convolution into the input gradient the generator receives. The DCGAN default is
    4×4, stride 2 (even overlap: every input pixel gets gradient through 2×2 taps);
    ``first_kernel=3`` with stride 2 overlaps unevenly (1, 2 or 4 taps by pixel phase), the
    article's mechanism; ``first_stride=1`` (3×3, stride 1) has no stride in that layer and adds
    one stride-2 stage to reach 4×4. Later stages are 4×4 stride-2 convolutions with BatchNorm and
    LeakyReLU.

    Args:
        image_size: 8 … 256, a power of two.
        channels: image channels.
        base_channels: channels of the first layer (DCGAN's ``ndf``).
        max_channels: cap on the widest stage.
        first_stride: 1 or 2.
        first_kernel: the first layer's kernel size; ``None`` for the default (4 with stride 2, 3 with
            stride 1). Stride 2 takes 3 or 4 (padding 1 keeps the output at half the size either way);
            stride 1 takes 3.
        norm: ``"batch"`` (BatchNorm in the hidden stages, as DCGAN), ``"spectral"`` (spectral
            normalisation of every convolution and no BatchNorm, as SNGAN; Miyato et al. 2018) or
            ``"none"``.

    Raises:
        ValueError: on a bad ``image_size``, width, ``first_stride``, ``first_kernel`` or ``norm``.

    Example:
        >>> d = DCGANDiscriminator(image_size=32, first_stride=1)
        >>> d(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2])
        >>> DCGANDiscriminator(image_size=32, first_kernel=3).net[0]
        Conv2d(3, 64, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)
    """

    def __init__(
        self,
        *,
        image_size: int = 64,
        channels: int = 3,
        base_channels: int = 64,
        max_channels: int = 512,
        first_stride: int = 2,
        first_kernel: int | None = None,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        stages = num_stages_for(image_size)
        for name, value in (("channels", channels), ("base_channels", base_channels),
                            ("max_channels", max_channels)):
            check_positive_int(value, name)
        check_int(first_stride, "first_stride", minimum=1, maximum=2)
        kernels = (3, 4) if first_stride == 2 else (3,)
        if first_kernel is None:
            first_kernel = kernels[-1]
        elif isinstance(first_kernel, bool) or not isinstance(first_kernel, int) or first_kernel not in kernels:
            raise ValueError(
                f"first_kernel must be one of {', '.join(map(str, kernels))} (or None) with first_stride="
                f"{first_stride}; got {first_kernel!r}."
            )
        check_choice(norm, "norm", DISCRIMINATOR_NORMS)
        self.image_size, self.channels, self.first_stride = image_size, channels, first_stride
        self.first_kernel = first_kernel

        first = nn.Conv2d(channels, base_channels, first_kernel, first_stride, 1, bias=False)
        downs = stages - 1 if first_stride == 2 else stages
        layers: list[nn.Module] = [first, nn.LeakyReLU(0.2, inplace=True)]
        width = base_channels
        for _ in range(downs):
            out = min(width * 2, max_channels)
            layers.append(nn.Conv2d(width, out, 4, 2, 1, bias=False))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            width = out
        layers.append(nn.Conv2d(width, 1, _BASE, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)
        dcgan_init_(self)
        if norm == "spectral":
            for index, layer in enumerate(self.net):
                if isinstance(layer, nn.Conv2d):
                    self.net[index] = nn.utils.parametrizations.spectral_norm(layer)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.image_size, self.image_size) or x.shape[1] != self.channels:
            raise ValueError(
                f"Discriminator expects images of shape (B, {self.channels}, {self.image_size}, "
                f"{self.image_size}); got {tuple(x.shape)}."
            )
        return self.net(x).flatten()
