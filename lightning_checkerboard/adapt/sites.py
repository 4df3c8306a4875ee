"""Finding the upsampling sites of a model: where a layer makes the feature map larger.

A site is one of

- ``transposed_conv``: an ``nn.ConvTranspose2d`` with a stride above 1;
- ``pixel_shuffle``: an ``nn.Conv2d`` followed by an ``nn.PixelShuffle`` in an ``nn.Sequential``;
- ``resize_conv``: an ``nn.Upsample``, an optional pad module and an ``nn.Conv2d`` in an ``nn.Sequential``;
- ``resize_conv`` also for diffusers' ``Upsample2D`` in its nearest-then-conv configuration (it is called
  with an ``output_size`` that registry layers do not take, so :func:`replace_upsamplers` refuses it);
- a layer of the package itself (:class:`~lightning_checkerboard.upsamplers.layers.Upsampler`: what the
  registry builds, and what :func:`~lightning_checkerboard.adapt.fuse_resize_conv` leaves), of the kind
  it computes.

Resizes written as calls inside a ``forward`` are not sites here: they have no module to hook or swap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from torch import nn

from lightning_checkerboard.adapt._diffusers import is_diffusers_upsample2d, upsample2d_conv, upsample2d_padding
from lightning_checkerboard.adapt.layer import FusedResizeConv2d
from lightning_checkerboard.adapt.patterns import (
    conv_padding,
    fusable_padding,
    pad_of_module,
    resize_of_module,
)
from lightning_checkerboard.functional.overlap import overlap_ratio
from lightning_checkerboard.upsamplers.layers import (
    DeconvBlurUpsample,
    DeconvUpsample,
    PixelShuffleUpsample,
    ResizeConvUpsample,
    Upsampler,
)

__all__ = ["UpsamplingSite", "find_upsampling_sites"]


@dataclass(frozen=True)
class UpsamplingSite:
    """One place where a model upsamples.

    Attributes:
        path: the module path the site is named by: the layer holding its weights (the conv of a
            ``Sequential`` pattern, the transposed conv, or the package layer).
        kind: ``"transposed_conv"``, ``"transposed_conv+blur"``, ``"pixel_shuffle"``, ``"resize_conv"``
            or the class name of another package layer.
        modules: paths of the modules that make up the site, in order; the last one's output is the
            site's output.
        in_channels: channels in.
        out_channels: channels out.
        kernel: the convolution's kernel size (``None`` where a layer does not say).
        stride: the upsampling factor (``None`` where it is not one integer for both axes).
        overlap: max/min overlap ratio in 2-D of the transposed convolution the site amounts to (1.0:
            even overlap); ``None`` where unknown.
        fusable: ``"yes"`` if :func:`~lightning_checkerboard.adapt.fuse_resize_conv` can fuse it exactly,
            ``"fused"`` if it already runs fused, else ``"no"``.
        replaceable: whether a registry layer can take its place: same call, output exactly ``stride``
            times the input; else ``reason`` says why not.
        reason: why no registry layer can take its place (empty when one can).
    """

    path: str
    kind: str
    modules: tuple[str, ...]
    in_channels: int
    out_channels: int
    kernel: int | None
    stride: int | None
    overlap: float | None
    fusable: str
    replaceable: bool
    reason: str = ""


def _square(value: object) -> int | None:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    return values[0] if values[0] == values[1] and isinstance(values[0], int) else None


def _qualify(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _transposed_conv(path: str, conv: nn.ConvTranspose2d) -> UpsamplingSite:
    stride, kernel = _square(conv.stride), _square(conv.kernel_size)
    reason = ""
    if stride is None or kernel is None:
        reason = (f"its stride {tuple(conv.stride)} or kernel {tuple(conv.kernel_size)} differs between axes, "
                  "which no registry layer matches")
    else:
        for axis in range(2):
            k, p, d, op = conv.kernel_size[axis], conv.padding[axis], conv.dilation[axis], conv.output_padding[axis]
            if d * (k - 1) + op + 1 - 2 * p != stride:
                reason = (f"its output is (n-1)*{stride} - 2*{p} + {d}*({k}-1) + {op} + 1, not {stride}*n, "
                          "which no registry layer matches")
                break
    overlap = overlap_ratio(kernel, stride, ndim=2) if stride and kernel else None
    return UpsamplingSite(path, "transposed_conv", (path,), conv.in_channels, conv.out_channels, kernel,
                          stride, overlap, "no", not reason, reason)


def _keeps_size(conv: nn.Conv2d, extra_padding: int = 0) -> bool:
    if conv.padding == "same":
        return extra_padding == 0 and tuple(conv.stride) == (1, 1)
    if conv.padding == "valid":
        pads = (0, 0)
    else:
        pads = tuple(conv.padding)
    return tuple(conv.stride) == (1, 1) and all(
        2 * (pads[a] + extra_padding) == conv.dilation[a] * (conv.kernel_size[a] - 1) for a in range(2)
    )


def _pad_width(module: nn.Module) -> int | None:
    padding = getattr(module, "padding", None)
    values = tuple(padding) if isinstance(padding, (tuple, list)) else (padding,)
    return values[0] if values and all(v == values[0] for v in values) and isinstance(values[0], int) else None


def _is_pad(module: nn.Module) -> bool:
    return isinstance(module, (nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d)) and (
        _pad_width(module) is not None)


def _pixel_shuffle(path: str, names: list[str], conv: nn.Conv2d, shuffle: nn.PixelShuffle) -> UpsamplingSite:
    stride, kernel = shuffle.upscale_factor, _square(conv.kernel_size)
    reason = ""
    if not _keeps_size(conv):
        reason = "its convolution changes the size before the shuffle, so its output is not a scaled input"
    if conv.out_channels % stride**2:
        reason = f"its convolution's {conv.out_channels} channels are not a multiple of {stride}²"
    # A sub-pixel convolution is a transposed convolution of kernel stride*k: every output is painted
    # by the same number of taps.
    overlap = overlap_ratio(stride * kernel, stride, ndim=2) if kernel else None
    return UpsamplingSite(_qualify(path, names[0]), "pixel_shuffle", tuple(_qualify(path, n) for n in names),
                          conv.in_channels, conv.out_channels // stride**2, kernel, stride, overlap, "no",
                          not reason, reason)


def _resize_conv(path: str, names: list[str], modules: list[nn.Module]) -> UpsamplingSite:
    upsample, conv = modules[0], modules[-1]
    pad = modules[1] if len(modules) == 3 else None
    resize = resize_of_module(upsample)
    kernel = _square(conv.kernel_size)
    reason = ""
    if resize is None:
        reason = (f"its nn.Upsample (size={upsample.size}, scale_factor={upsample.scale_factor}, "
                  f"mode={upsample.mode!r}) is not an integer resize, which the registry layers make")
    elif not _keeps_size(conv, _pad_width(pad) if pad is not None else 0):
        reason = "its convolution changes the size after the resize, so its output is not a scaled input"
    stride = resize.scale if resize is not None else None
    fusable = "no"
    if resize is not None and fusable_padding(resize, pad_of_module(pad) if pad is not None else None,
                                              conv_padding(conv)) is not None:
        fusable = "yes"
    # A resize is a transposed convolution with its filter (a box of `s` taps, a triangle of 2s):
    # even overlap, whatever conv follows.
    overlap = None
    if resize is not None:
        overlap = overlap_ratio(resize.scale * (2 if resize.mode == "bilinear" else 1), resize.scale, ndim=2)
    return UpsamplingSite(_qualify(path, names[-1]), "resize_conv", tuple(_qualify(path, n) for n in names),
                          conv.in_channels, conv.out_channels, kernel, stride, overlap, fusable, not reason, reason)


def _package_layer(path: str, layer: Upsampler) -> UpsamplingSite:
    kernel, overlap, fusable, kind = None, None, "no", type(layer).__name__
    s = layer.scale
    if isinstance(layer, DeconvUpsample):
        kind = "transposed_conv+blur" if isinstance(layer, DeconvBlurUpsample) else "transposed_conv"
        kernel = _square(layer.conv.kernel_size)
        overlap = overlap_ratio(kernel, s, ndim=2)
    elif isinstance(layer, (ResizeConvUpsample, FusedResizeConv2d)):
        fused = isinstance(layer, FusedResizeConv2d) or layer.impl == "fused"
        exists = layer.mode == "nearest" or s == 2  # the fused bilinear path is for scale 2
        kind, kernel, fusable = "resize_conv", 3, "fused" if fused else "yes" if exists else "no"
        overlap = overlap_ratio(s * (2 if layer.mode == "bilinear" else 1), s, ndim=2)
    elif isinstance(layer, PixelShuffleUpsample):
        kind, kernel = "pixel_shuffle", _square(layer.conv.kernel_size)
        overlap = overlap_ratio(s * kernel, s, ndim=2)
    return UpsamplingSite(path, kind, (path,), layer.in_channels, layer.out_channels, kernel, s, overlap,
                          fusable, True)


def _diffusers_upsample2d(path: str, block: nn.Module) -> UpsamplingSite:
    conv = upsample2d_conv(block)
    fusable = "fused" if "forward" in vars(block) else "yes" if upsample2d_padding(block) is not None else "no"
    return UpsamplingSite(
        path, "resize_conv", (path,), conv.in_channels, conv.out_channels, _square(conv.kernel_size), 2,
        overlap_ratio(2, 2, ndim=2), fusable, False,
        "diffusers' Upsample2D is called with an output_size that registry layers do not take",
    )


def _walk(module: nn.Module, path: str) -> Iterator[UpsamplingSite]:
    if isinstance(module, Upsampler):
        yield _package_layer(path, module)
        return
    if (is_diffusers_upsample2d(module) and getattr(module, "use_conv", False) and getattr(module, "interpolate", False)
            and not getattr(module, "use_conv_transpose", False) and isinstance(upsample2d_conv(module), nn.Conv2d)):
        yield _diffusers_upsample2d(path, module)
        return
    if isinstance(module, nn.ConvTranspose2d):
        if any(s > 1 for s in module.stride):
            yield _transposed_conv(path, module)
        return
    names = list(module._modules)
    children = [module._modules[n] for n in names]
    sequential = isinstance(module, nn.Sequential)
    i = 0
    while i < len(children):
        child, following = children[i], children[i + 1 : i + 3]
        if sequential and isinstance(child, nn.Conv2d) and following and isinstance(following[0], nn.PixelShuffle):
            yield _pixel_shuffle(path, names[i : i + 2], child, following[0])
            i += 2
            continue
        if sequential and isinstance(child, nn.Upsample) and following:
            span = 2 if _is_pad(following[0]) and len(following) > 1 else 1
            if type(following[span - 1]) is nn.Conv2d:
                yield _resize_conv(path, names[i : i + span + 1], children[i : i + span + 1])
                i += span + 1
                continue
        if child is not None:
            yield from _walk(child, _qualify(path, names[i]))
        i += 1


def find_upsampling_sites(model: nn.Module) -> list[UpsamplingSite]:
    """Every upsampling site of ``model``, in module order.

    Example:
        >>> model = nn.Sequential(nn.ConvTranspose2d(8, 4, 4, 2, 1), nn.Upsample(scale_factor=2),
        ...                       nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 12, 3, padding=1), nn.PixelShuffle(2))
        >>> [(s.path, s.kind, s.stride, s.fusable) for s in find_upsampling_sites(model)]
        [('0', 'transposed_conv', 2, 'no'), ('2', 'resize_conv', 2, 'yes'), ('3', 'pixel_shuffle', 2, 'no')]
    """
    return list(_walk(model, ""))


