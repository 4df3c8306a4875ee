"""The feed-forward style network of Johnson et al. (2016), with registry upsamplers.

Plain ``nn.Module``: no Lightning, no losses. Its two upsampling stages come from the upsampler
registry, one name for both or one per stage, so fast style transfer with transposed convolutions
(the article's strongest checkerboards) and with resize-convolutions is one string apart.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from lightning_checkerboard._validation import check_positive_int
from lightning_checkerboard.upsamplers import create_upsampler, parse_upsampler_spec

__all__ = ["ResidualBlock", "TransformerNet", "check_transformer_size"]

#: Two stride-2 convolutions down, two upsampling stages up: sizes must be multiples of this.
SIZE_MULTIPLE = 4
MIN_SIZE = 16
NUM_STAGES = 2


def check_transformer_size(image_size: object, name: str = "image_size") -> int:
    """Check that the transformer net maps ``image_size``² images to the same size.

    Raises:
        ValueError: a size below 16 or not a multiple of 4 (the two stride-2 stages would not
            return to it).
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < MIN_SIZE \
            or image_size % SIZE_MULTIPLE:
        raise ValueError(
            f"{name} must be a multiple of {SIZE_MULTIPLE} and at least {MIN_SIZE} (two stride-2 stages "
            f"down and two up); got {image_size!r}."
        )
    return image_size


def _conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    # Reflection padding keeps the image border free of the dark frame zero padding paints.
    return nn.Sequential(
        nn.ReflectionPad2d(kernel_size // 2),
        nn.Conv2d(in_channels, out_channels, kernel_size, stride),
    )


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True)


class ResidualBlock(nn.Module):
    """``x + IN(conv(ReLU(IN(conv(x)))))`` with 3×3 convolutions, channels unchanged."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(channels, channels, 3), _norm(channels), nn.ReLU(inplace=True),
            _conv(channels, channels, 3), _norm(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class TransformerNet(nn.Module):
    """Image ``(B, C, H, W)`` → stylised image of the same shape (Johnson et al., 2016).

    A 9×9 convolution, two stride-2 3×3 convolutions down, five residual blocks, two upsampling
    stages from the registry, a 9×9 convolution out; instance normalisation and ReLU after every
    layer but the last. Widths are ``base_channels · (1, 2, 4)``. The output is not squashed: in a
    [0, 1] image space, values outside it are clipped only for display, so the loss sees what the
    network paints.

    Args:
        upsampler: one registered name for both upsampling stages, or one per stage
            (comma-separated string or sequence), coarse stage first.
        channels: image channels in and out.
        base_channels: width of the first and last feature maps (Johnson et al.: 32).
        num_residual_blocks: residual blocks at the lowest resolution (Johnson et al.: 5).
        upsampler_options: passed to both stages' ``create_upsampler`` (e.g. ``padding``).

    Shape:
        - Input: ``(B, C, H, W)`` with ``H`` and ``W`` multiples of 4.
        - Output: ``(B, C, H, W)``.

    Raises:
        ValueError: an unknown upsampler, a per-stage list of the wrong length, non-positive widths,
            or (in ``forward``) an input whose sides are not multiples of 4.

    Example:
        >>> import torch
        >>> net = TransformerNet("nearest_conv,deconv", base_channels=8)
        >>> net.stage_names
        ['nearest_conv', 'deconv']
        >>> net(torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(
        self,
        upsampler: str | Sequence[str] = "deconv",
        *,
        channels: int = 3,
        base_channels: int = 32,
        num_residual_blocks: int = 5,
        upsampler_options: dict | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("channels", channels), ("base_channels", base_channels),
                            ("num_residual_blocks", num_residual_blocks)):
            check_positive_int(value, name)
        self.stage_names = parse_upsampler_spec(upsampler, NUM_STAGES)
        self.channels = channels
        w1, w2, w3 = base_channels, base_channels * 2, base_channels * 4
        self.encoder = nn.Sequential(
            _conv(channels, w1, 9), _norm(w1), nn.ReLU(inplace=True),
            _conv(w1, w2, 3, stride=2), _norm(w2), nn.ReLU(inplace=True),
            _conv(w2, w3, 3, stride=2), _norm(w3), nn.ReLU(inplace=True),
        )
        self.residuals = nn.Sequential(*(ResidualBlock(w3) for _ in range(num_residual_blocks)))
        options = dict(upsampler_options or {})
        self.stages = nn.ModuleList(
            nn.Sequential(create_upsampler(name, width_in, width_out, **options), _norm(width_out), nn.ReLU(inplace=True))
            for name, width_in, width_out in zip(self.stage_names, (w3, w2), (w2, w1))
        )
        self.head = _conv(w1, channels, 9)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels or x.shape[-1] % SIZE_MULTIPLE or x.shape[-2] % SIZE_MULTIPLE:
            raise ValueError(
                f"TransformerNet expects (B, {self.channels}, H, W) with H and W multiples of {SIZE_MULTIPLE}; "
                f"got {tuple(x.shape)}."
            )
        y = self.residuals(self.encoder(x))
        for stage in self.stages:
            y = stage(y)
        return self.head(y)
