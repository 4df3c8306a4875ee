"""An ESPCN-style super-resolution network (Shi et al., 2016) whose upsampling stages come from the registry.

Plain ``nn.Module``: no Lightning, no degradation, no losses. ESPCN extracts features at the low
resolution and lets its last layer, a sub-pixel convolution, paint the high-resolution image; here
that last layer is any registered upsampler, so sub-pixel convolution (``pixel_shuffle``), its
ICNR-initialised form (``pixel_shuffle_icnr``, Aitken et al., 2017), transposed convolutions and
resize-convolutions are one string apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from lightning_checkerboard.upsamplers import create_upsampler, parse_upsampler_spec

__all__ = ["ACTIVATIONS", "SUPPORTED_SCALES", "SuperResolutionNet", "num_stages_for_scale"]

#: Super-resolution factors: one ×2 upsampling stage per doubling.
SUPPORTED_SCALES = (2, 4, 8)
#: Hidden-layer activations: ``tanh`` as in ESPCN, or ``relu``.
ACTIVATIONS = ("tanh", "relu")


def num_stages_for_scale(scale: object) -> int:
    """Upsampling stages (each ×2) for the factor ``scale``.

    Raises:
        ValueError: a scale not in :data:`SUPPORTED_SCALES`.

    Example:
        >>> num_stages_for_scale(2), num_stages_for_scale(4)
        (1, 2)
    """
    if isinstance(scale, bool) or scale not in SUPPORTED_SCALES:
        raise ValueError(f"scale must be one of {', '.join(map(str, SUPPORTED_SCALES))}; got {scale!r}.")
    return int(math.log2(scale))


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return value


def _activation(name: str) -> nn.Module:
    return nn.Tanh() if name == "tanh" else nn.ReLU(inplace=True)


class SuperResolutionNet(nn.Module):
    """Low-resolution image ``(B, C, h, w)`` → high-resolution image ``(B, C, scale·h, scale·w)``.

    ESPCN's layout: a 5×5 convolution to ``features`` channels and a 3×3 convolution to
    ``hidden_channels``, each followed by the activation, all at the low resolution; then one ×2
    upsampling stage from the registry per doubling. Every stage but the last maps
    ``hidden_channels`` to ``hidden_channels`` and is followed by the activation; the last maps them
    to the image's ``channels`` directly and is the output layer, as ESPCN's sub-pixel convolution
    is (so ``pixel_shuffle`` at ``scale=2`` is exactly ESPCN). Convolutions are zero-padded to keep
    the size, as in ESPCN's common implementations.

    With ``residual=True`` the network predicts a correction to the bicubic interpolation of its
    input (the same kernel as :func:`~lightning_checkerboard.data.degradation.bicubic_upscale`,
    unclamped): the output is ``bicubic(x) + net(x)``, a global residual as in VDSR (Kim et al.,
    2016). The output is never clamped: the loss sees what the network paints.

    Args:
        upsampler: one registered upsampler for every stage, or one per stage (comma-separated
            string or sequence), coarse stage first.
        scale: 2, 4 or 8 (one, two or three stages).
        channels: image channels in and out.
        features: channels of the 5×5 feature layer (ESPCN: 64).
        hidden_channels: channels of the 3×3 layer and between stages (ESPCN: 32).
        activation: ``"tanh"`` (ESPCN) or ``"relu"``.
        residual: add the bicubic interpolation of the input to the output (the default: the
            network then trains to beat bicubic interpolation in far fewer steps).
        upsampler_options: passed to every stage's ``create_upsampler`` (e.g. ``padding``).

    Shape:
        - Input: ``(B, channels, h, w)``.
        - Output: ``(B, channels, scale·h, scale·w)``.

    Raises:
        ValueError: an unknown upsampler or activation, a per-stage list of the wrong length, an
            unsupported scale, non-positive widths, or (in ``forward``) an input of the wrong shape.

    Example:
        >>> import torch
        >>> net = SuperResolutionNet("nearest_conv,pixel_shuffle", scale=4, features=8, hidden_channels=4)
        >>> net.stage_names
        ['nearest_conv', 'pixel_shuffle']
        >>> net(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(
        self,
        upsampler: str | Sequence[str] = "pixel_shuffle",
        *,
        scale: int = 2,
        channels: int = 3,
        features: int = 64,
        hidden_channels: int = 32,
        activation: str = "tanh",
        residual: bool = True,
        upsampler_options: dict | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("channels", channels), ("features", features), ("hidden_channels", hidden_channels)):
            _positive(name, value)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}.")
        if not isinstance(residual, bool):
            raise ValueError(f"residual must be True or False; got {residual!r}.")
        self.stage_names = parse_upsampler_spec(upsampler, num_stages_for_scale(scale))
        self.scale, self.channels, self.residual = scale, channels, residual
        self.features = nn.Sequential(
            nn.Conv2d(channels, features, 5, padding=2), _activation(activation),
            nn.Conv2d(features, hidden_channels, 3, padding=1), _activation(activation),
        )
        options = dict(upsampler_options or {})
        last = len(self.stage_names) - 1
        self.stages = nn.ModuleList(
            create_upsampler(name, hidden_channels, channels, **options) if index == last
            else nn.Sequential(create_upsampler(name, hidden_channels, hidden_channels, **options), _activation(activation))
            for index, name in enumerate(self.stage_names)
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"SuperResolutionNet expects (B, {self.channels}, h, w); got {tuple(x.shape)}.")
        y = self.features(x)
        for stage in self.stages:
            y = stage(y)
        if self.residual:
            size = (x.shape[-2] * self.scale, x.shape[-1] * self.scale)
            y = y + F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)
        return y
