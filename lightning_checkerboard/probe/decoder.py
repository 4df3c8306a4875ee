"""A decoder seen the same way whatever it is: ``decode(latents) -> images``, ``encode(images) -> latents``.

:class:`DecoderAdapter` wraps either an object with a ``decode`` method (and, optionally, ``encode``),
such as diffusers' ``AutoencoderKL``, or a plain module that maps latents to images. It unwraps what
those return (a tensor, an object with ``.sample``, a latent distribution whose ``mode()`` is taken, a
tuple whose first item is the tensor), and finds the latent channels and the stride:

- latent channels: given, else the model's ``config.latent_channels`` (diffusers) or
  ``latent_channels`` attribute, else the input channels of its first convolution;
- stride: decoding a ``4 x 4`` latent once (a dry run) gives the output size, hence the stride; a
  given stride must agree with it.

:func:`tiled_decode` decodes a latent in overlapping tiles blended linearly where they overlap.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["DecoderAdapter", "ProbeError", "tiled_decode"]

#: The latent side of the dry run that finds the stride.
DRY_RUN_SIDE = 4


class ProbeError(ValueError):
    """A mistake in what the probe was given (spec, flags, model); its message is one line."""


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:300]}" if lines else type(error).__name__


def _unwrap_images(value: Any, what: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    sample = getattr(value, "sample", None)
    if isinstance(sample, Tensor):
        return sample
    if isinstance(value, dict) and isinstance(value.get("sample"), Tensor):
        return value["sample"]
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], Tensor):
        return value[0]
    raise ProbeError(f"{what} returned {type(value).__name__}; expected a tensor, an object with a .sample tensor "
                     "or a tuple whose first item is a tensor")


def _unwrap_latents(value: Any) -> Tensor:
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    value = getattr(value, "latent_dist", value)
    if isinstance(value, Tensor):
        return value
    mode = getattr(value, "mode", None)  # a latent distribution: its most likely value, deterministic
    if callable(mode):
        value = mode()
    elif isinstance(getattr(value, "mean", None), Tensor):
        value = value.mean
    for name in ("latents", "latent", "sample"):
        if not isinstance(value, Tensor) and isinstance(getattr(value, name, None), Tensor):
            value = getattr(value, name)
    if isinstance(value, Tensor):
        return value
    raise ProbeError(f"encode returned {type(value).__name__}; expected a tensor, a latent distribution "
                     "(.latent_dist with .mode()) or a tuple whose first item is one of those")


def _config_latent_channels(model: Any) -> int | None:
    config = getattr(model, "config", None)
    value = config.get("latent_channels") if isinstance(config, dict) else getattr(config, "latent_channels", None)
    value = value if value is not None else getattr(model, "latent_channels", None)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(model, nn.Module):
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                return module.in_channels
    return None


class DecoderAdapter:
    """A decoder (and its encoder, if any) behind one interface, with its latent channels and stride.

    Args:
        model: an object with a callable ``decode`` (and optionally ``encode``), or a callable
            ``nn.Module`` that maps latents ``(B, C, h, w)`` to images ``(B, c, h * s, w * s)``.
        latent_channels: ``C``; ``None`` finds it (see the module docstring).
        stride: ``s``; ``None`` finds it by a dry run, a given value must agree with the dry run.
        value_range: the images' value range ``(low, high)`` (diffusers' VAEs: ``(-1, 1)``).
        device: where the model (moved there and put in eval mode, in place) and the latents go.

    Raises:
        ProbeError: a model that is neither, latent channels that cannot be found, a dry run that fails
            or gives no integer stride, a stride that disagrees, an encoder whose latents do not match.
    """

    def __init__(self, model: Any, *, latent_channels: int | None = None, stride: int | None = None,
                 value_range: tuple[float, float] = (-1.0, 1.0), device: torch.device | str = "cpu") -> None:
        self._decode = getattr(model, "decode", None)
        if not callable(self._decode):
            if not isinstance(model, nn.Module):
                raise ProbeError(f"the model must have a decode(latents) method or be a torch.nn.Module that maps "
                                 f"latents to images; got {type(model).__name__}")
            self._decode = model
        encode = getattr(model, "encode", None)
        self._encode = encode if callable(encode) else None
        self.model = model
        self.name = type(model).__name__
        self.device = torch.device(device)
        low, high = value_range
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ProbeError(f"value_range must be two finite numbers low < high; got {value_range!r}")
        self.value_range = (float(low), float(high))
        if isinstance(model, nn.Module):
            model.to(self.device).eval()
        self.latent_channels = latent_channels or _config_latent_channels(model)
        if self.latent_channels is None:
            raise ProbeError(f"cannot find the latent channels of {self.name} (no config.latent_channels and no "
                             "convolution): give --latent-channels")
        self.image_channels, found = self._dry_run()
        if stride is not None and stride != found:
            raise ProbeError(f"--stride {stride} does not match the decoder: a {DRY_RUN_SIDE}x{DRY_RUN_SIDE} latent "
                             f"decodes to {DRY_RUN_SIDE * found}x{DRY_RUN_SIDE * found} (stride {found})")
        self.stride = found
        if self._encode is not None:
            self._check_encoder()

    @property
    def has_encoder(self) -> bool:
        """Whether the model can encode images (a round trip is possible)."""
        return self._encode is not None

    @torch.no_grad()
    def _dry_run(self) -> tuple[int, int]:
        side = DRY_RUN_SIDE
        latents = torch.zeros(1, self.latent_channels, side, side, device=self.device)
        try:
            images = self.decode(latents)
        except ProbeError:
            raise
        except Exception as error:  # the model's own failure: most often the wrong latent channels
            raise ProbeError(f"decoding a latent of shape {tuple(latents.shape)} failed ({_first_line(error)}); "
                             "check --latent-channels") from None
        if images.dim() != 4 or images.shape[0] != 1:
            raise ProbeError(f"decoding a latent of shape {tuple(latents.shape)} gave shape {tuple(images.shape)}, "
                             "not images (1, C, H, W)")
        height, width = images.shape[-2:]
        if height != width or height % side or height // side < 2:
            raise ProbeError(f"decoding a {side}x{side} latent gave {height}x{width} images: not an upsampling by "
                             "one integer stride of at least 2")
        return int(images.shape[1]), height // side

    @torch.no_grad()
    def _check_encoder(self) -> None:
        side = DRY_RUN_SIDE * self.stride
        images = torch.zeros(1, self.image_channels, side, side, device=self.device)
        try:
            latents = self.encode(images)
        except ProbeError:
            raise
        except Exception as error:
            raise ProbeError(f"encoding an image of shape {tuple(images.shape)} failed "
                             f"({_first_line(error)})") from None
        expected = (1, self.latent_channels, DRY_RUN_SIDE, DRY_RUN_SIDE)
        if tuple(latents.shape) != expected:
            raise ProbeError(f"encoding an image of shape {tuple(images.shape)} gave latents of shape "
                             f"{tuple(latents.shape)}; the decoder takes {expected} (check --latent-channels)")

    def decode(self, latents: Tensor) -> Tensor:
        """Images ``(B, c, h * s, w * s)`` in the model's value range, as float."""
        return _unwrap_images(self._decode(latents.to(self.device)), "decode").float()

    def encode(self, images: Tensor) -> Tensor:
        """Latents of images given in the model's value range (a distribution's mode, not a sample)."""
        if self._encode is None:
            raise ProbeError(f"{self.name} has no encode method")
        return _unwrap_latents(self._encode(images.to(self.device))).float()

    def to_unit(self, images: Tensor) -> Tensor:
        """Images mapped from the value range to ``[0, 1]`` (not clamped: values outside stay outside)."""
        low, high = self.value_range
        return (images - low) / (high - low)

    def from_unit(self, images: Tensor) -> Tensor:
        """``[0, 1]`` images mapped to the model's value range."""
        low, high = self.value_range
        return images * (high - low) + low


def _ramp(length: int, overlap: int, first: bool, last: bool, dtype: torch.dtype, device: torch.device) -> Tensor:
    weight = torch.ones(length, dtype=dtype, device=device)
    if overlap == 0:
        return weight
    rise = (torch.arange(overlap, dtype=dtype, device=device) + 0.5) / overlap
    if not first:
        weight[:overlap] = torch.minimum(weight[:overlap], rise[: min(overlap, length)])
    if not last:
        weight[-overlap:] = torch.minimum(weight[-overlap:], rise.flip(0))
    return weight


def _starts(size: int, tile: int, step: int) -> list[int]:
    starts = [0]
    while starts[-1] + tile < size:
        starts.append(starts[-1] + step)
    return starts


def check_tiling(tile: int, overlap: int, stride: int) -> int:
    """The tile period ``tile - overlap``, after checking both against ``stride``; raises :class:`ProbeError`."""
    if tile < stride or tile % stride:
        raise ProbeError(f"--tile must be a positive multiple of the decoder's stride {stride}; got {tile}")
    if overlap < 0 or overlap % stride:
        raise ProbeError(f"--overlap must be a non-negative multiple of the decoder's stride {stride}; got {overlap}")
    if overlap >= tile:
        raise ProbeError(f"--overlap must be smaller than --tile {tile}; got {overlap}")
    return tile - overlap


@torch.no_grad()
def tiled_decode(decode: Callable[[Tensor], Tensor], latents: Tensor, *, tile: int, overlap: int,
                 stride: int) -> Tensor:
    """Decode ``latents`` in overlapping square tiles, blended linearly where they overlap.

    Tiles of ``tile // stride`` latent pixels start every ``(tile - overlap) // stride`` latent pixels
    along each axis (the last one is cut at the border); each is decoded alone. In an overlap of ``N``
    output pixels the earlier tile's weight falls linearly from 1 to 0 while the later one's rises,
    ``(j + 0.5) / N`` at pixel ``j``; the output is the weighted sum divided by the summed weights.
    With ``overlap=0`` the tiles are simply put side by side. The tile grid repeats every
    ``T = tile - overlap`` output pixels, which is where a seam shows.

    Args:
        decode: maps a latent ``(B, C, h, w)`` to images ``(B, c, h * stride, w * stride)``.
        latents: ``(B, C, H, W)``.
        tile: tile side in output pixels, a multiple of ``stride``.
        overlap: overlap in output pixels, a multiple of ``stride``, smaller than ``tile``.
        stride: the decoder's stride.

    Shape:
        - Output: ``(B, c, H * stride, W * stride)``.

    Raises:
        ProbeError: if ``tile`` or ``overlap`` is not a multiple of ``stride``, or ``overlap >= tile``.

    Example:
        >>> up = lambda z: torch.nn.functional.interpolate(z, scale_factor=2, mode="nearest")
        >>> z = torch.randn(1, 3, 8, 8)
        >>> torch.allclose(tiled_decode(up, z, tile=8, overlap=4, stride=2), up(z))
        True
    """
    check_tiling(tile, overlap, stride)
    size_h, size_w = latents.shape[-2:]
    tile_z, step_z, ovl = tile // stride, (tile - overlap) // stride, overlap
    out = weights = None
    rows, cols = _starts(size_h, tile_z, step_z), _starts(size_w, tile_z, step_z)
    for r, top in enumerate(rows):
        for c, left in enumerate(cols):
            piece = decode(latents[..., top : top + tile_z, left : left + tile_z])
            if out is None:
                out = piece.new_zeros(*piece.shape[:2], size_h * stride, size_w * stride)
                weights = piece.new_zeros(size_h * stride, size_w * stride)
            h, w = piece.shape[-2:]
            weight = torch.outer(_ramp(h, ovl, r == 0, r == len(rows) - 1, piece.dtype, piece.device),
                                 _ramp(w, ovl, c == 0, c == len(cols) - 1, piece.dtype, piece.device))
            y, x = top * stride, left * stride
            out[..., y : y + h, x : x + w] += piece * weight
            weights[y : y + h, x : x + w] += weight
    return out / weights
