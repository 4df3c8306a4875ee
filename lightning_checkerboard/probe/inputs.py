"""The inputs a decoder is probed with: photographs, constants and ramps, as images or as latents.

Each kind holds content whose decoding should carry no grid pattern, so what the score reads is the
decoder's own:

- ``photos``: held-out crops of the bundled photographs, encoded then decoded (a round trip);
- ``constant-images``: images of one random colour each, encoded then decoded;
- ``constant-latents``: latents constant over space: zeros, then one random value per channel;
- ``ramp-images``: linear ramps between two random colours, in directions spread around the circle,
  encoded then decoded;
- ``ramp-latents``: linear ramps in latent space (a random offset and slope per channel).

The image kinds need an encoder; a decoder without one skips them. Every kind is seeded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["INPUT_KINDS", "InputBatch", "make_inputs", "ramp"]

#: Every input kind, in the order they are reported; ``True`` for kinds that go through the encoder.
INPUT_KINDS: dict[str, bool] = {
    "photos": True,
    "constant-images": True,
    "constant-latents": False,
    "ramp-images": True,
    "ramp-latents": False,
}

#: What each kind is, in words, for the report.
DESCRIPTIONS = {
    "photos": "held-out photographs, encoded then decoded",
    "constant-images": "one colour per image, encoded then decoded",
    "constant-latents": "latents constant over space (zeros, then one random value per channel)",
    "ramp-images": "linear colour ramps in directions around the circle, encoded then decoded",
    "ramp-latents": "linear ramps in latent space (random offset and slope per channel)",
}


@dataclass(frozen=True)
class InputBatch:
    """The inputs of one kind: ``images`` in ``[0, 1]`` (to encode) or ``latents`` (to decode)."""

    kind: str
    images: Tensor | None = None
    latents: Tensor | None = None


def ramp(count: int, side: int, generator: torch.Generator) -> Tensor:
    """``(count, 1, side, side)`` linear ramps from 0 to 1 across the square, directions spread evenly.

    Example:
        >>> r = ramp(4, 8, torch.Generator().manual_seed(0))
        >>> r.shape, float(r.min()) >= 0.0, float(r.max()) <= 1.0
        (torch.Size([4, 1, 8, 8]), True, True)
    """
    jitter = torch.rand(count, generator=generator, dtype=torch.float64)
    angle = 2 * math.pi * (torch.arange(count, dtype=torch.float64) + jitter) / count
    coords = (torch.arange(side, dtype=torch.float64) + 0.5) / side - 0.5
    y, x = coords[:, None], coords[None, :]
    t = torch.cos(angle)[:, None, None] * x + torch.sin(angle)[:, None, None] * y
    reach = 0.5 * (torch.cos(angle).abs() + torch.sin(angle).abs())[:, None, None]  # the largest |t| on the square
    return (0.5 + 0.5 * t / reach).unsqueeze(1).float()


def _photos(count: int, side: int, channels: int, seed: int) -> Tensor:
    from lightning_checkerboard.data.photos import build_photo_crops

    crops = build_photo_crops(side, 0, count, seed=0, split_seed=seed)["heldout"].images.float() / 255.0
    return crops if channels == 3 else crops.mean(dim=1, keepdim=True).expand(-1, channels, -1, -1).contiguous()


def make_inputs(kind: str, count: int, side: int, *, stride: int, image_channels: int, latent_channels: int,
                seed: int) -> InputBatch:
    """``count`` inputs of ``kind`` whose decoding is ``side x side`` pixels (latents ``side // stride``).

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind not in INPUT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(INPUT_KINDS)}; got {kind!r}")
    generator = torch.Generator().manual_seed(seed * 1009 + list(INPUT_KINDS).index(kind))
    latent_side = side // stride
    if kind == "photos":
        return InputBatch(kind, images=_photos(count, side, image_channels, seed))
    if kind == "constant-images":
        colours = 0.1 + 0.8 * torch.rand(count, image_channels, 1, 1, generator=generator)
        return InputBatch(kind, images=colours.expand(-1, -1, side, side).contiguous())
    if kind == "ramp-images":
        low, high = (0.1 + 0.8 * torch.rand(2, count, image_channels, 1, 1, generator=generator)).unbind(0)
        return InputBatch(kind, images=low + (high - low) * ramp(count, side, generator))
    if kind == "constant-latents":
        values = torch.randn(count, latent_channels, 1, 1, generator=generator)
        values[0] = 0.0
        return InputBatch(kind, latents=values.expand(-1, -1, latent_side, latent_side).contiguous())
    offset, slope = torch.randn(2, count, latent_channels, 1, 1, generator=generator).unbind(0)
    return InputBatch(kind, latents=offset + slope * (2.0 * ramp(count, latent_side, generator) - 1.0))
