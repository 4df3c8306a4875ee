"""Small re-creations of third-party layouts whose upsampling sites are hard to find (no network)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class UpsampleConvLayer(nn.Module):
    """fast-neural-style's TransformerNet block: F.interpolate in forward, a reflection pad, a conv."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, upsample: int | None = None) -> None:
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size)

    def forward(self, x):
        if self.upsample:
            x = F.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x))


class TransformerNetLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.relu = nn.ReLU()
        self.deconv1 = UpsampleConvLayer(8, 8, 3, upsample=2)
        self.deconv2 = UpsampleConvLayer(8, 3, 9)

    def forward(self, x):
        return self.deconv2(self.relu(self.deconv1(self.relu(self.conv1(x)))))


class DoubleConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU())

    def forward(self, x):
        return self.double_conv(x)


class Up(nn.Module):
    """milesial's U-Net Up block: an nn.Upsample attribute, a pad to the skip's size, a concatenation."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        dy, dx = x2.size()[2] - x1.size()[2], x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([x2, x1], dim=1))


class UNetLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inc = DoubleConv(3, 4)
        self.down = nn.Sequential(nn.MaxPool2d(2), DoubleConv(4, 8))
        self.up1 = Up(12, 4)
        self.outc = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        x1 = self.inc(x)
        return self.outc(self.up1(self.down(x1), x1))


class FDATLikeUpsampler(nn.Module):
    """nn.Upsample, a GELU, then the conv (a pointwise activation between the resize and the conv)."""

    def __init__(self, channels: int = 6, out_channels: int = 3) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, channels, 3, padding=1)
        self.upsampler = nn.Sequential(nn.Upsample(scale_factor=2), nn.GELU(), nn.Conv2d(channels, out_channels, 3, padding=1))

    def forward(self, x):
        return self.upsampler(self.body(x))


class SRVGGLike(nn.Module):
    """Real-ESRGAN's SRVGGNetCompact: a ModuleList of conv/act, a PixelShuffle applied in forward, a nearest residual."""

    def __init__(self, channels: int = 8, upscale: int = 2) -> None:
        super().__init__()
        self.upscale = upscale
        self.body = nn.ModuleList([nn.Conv2d(3, channels, 3, 1, 1), nn.PReLU(channels),
                                   nn.Conv2d(channels, channels, 3, 1, 1), nn.PReLU(channels),
                                   nn.Conv2d(channels, 3 * upscale**2, 3, 1, 1)])
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x):
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        base = F.interpolate(x, scale_factor=self.upscale, mode="nearest")
        out += base
        return out


class ShapeBranchSR(nn.Module):
    """An untraceable forward (SwinIR/RRDBNet style): a shape branch, an assert, an attribute write."""

    def __init__(self, window: int = 4) -> None:
        super().__init__()
        self.window = window
        self.conv_first = nn.Conv2d(3, 8, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(8, 8, 3, 1, 1)
        self.conv_last = nn.Conv2d(8, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2)

    def forward(self, x):
        h, w = x.shape[-2:]
        assert h % 2 == 0 and w % 2 == 0, "even sizes only"
        if h % self.window != 0:
            x = F.pad(x, (0, 0, 0, self.window - h % self.window), mode="reflect")
        self.last_size = (h, w)
        feat = self.conv_first(x)
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(feat)[..., : 2 * h, : 2 * w]


class AlignCornersResize(nn.Module):
    """A bilinear ×2 resize with align_corners=True, then a 3×3 conv (not fusable, but replaceable)."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                                nn.Conv2d(4, 2, 3, padding=1))

    def forward(self, x):
        return self.up(x)


def pixel_unshuffle(x, scale: int):
    """BasicSR's helper: an assert on the shape, which torch.fx cannot trace through."""
    b, c, hh, hw = x.size()
    assert hh % scale == 0 and hw % scale == 0
    h, w = hh // scale, hw // scale
    return x.view(b, c, h, scale, w, scale).permute(0, 1, 3, 5, 2, 4).reshape(b, c * scale**2, h, w)


class RRDBNetLike(nn.Module):
    """BasicSR's RRDBNet at ×2: pixel_unshuffle, then two nearest ×2 + conv in the forward."""

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.conv_first = nn.Conv2d(3 * 4 if scale == 2 else 3, 8, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(8, 8, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(8, 8, 3, 1, 1)
        self.conv_last = nn.Conv2d(8, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x):
        feat = pixel_unshuffle(x, scale=2) if self.scale == 2 else x
        feat = self.conv_first(feat)
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(feat)
