"""``replace_upsamplers``: every upsampling site of a model, swapped for a registry layer."""

from __future__ import annotations

import copy
import fnmatch
import logging
import warnings
from collections.abc import Mapping
from typing import Any

from torch import nn

from lightning_checkerboard.adapt.sites import UpsamplingSite, find_upsampling_sites
from lightning_checkerboard.upsamplers import create_upsampler

__all__ = ["replace_upsamplers"]

log = logging.getLogger(__name__)


def _choose(upsampler: str | Mapping[str, str], path: str) -> str | None:
    if isinstance(upsampler, str):
        return upsampler
    for pattern, name in upsampler.items():
        if fnmatch.fnmatchcase(path, pattern):
            return name
    return None


def _check_upsampler(upsampler: object) -> None:
    if isinstance(upsampler, str):
        return
    if isinstance(upsampler, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in upsampler.items()):
        return
    raise TypeError(
        "upsampler must be a registered name or a mapping of module-path globs to names; "
        f"got {type(upsampler).__name__}: {upsampler!r}."
    )


def _set(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, module)


def _swap(model: nn.Module, site: UpsamplingSite, name: str, options: dict[str, Any]) -> None:
    if not site.replaceable or site.stride is None:
        raise ValueError(
            f"cannot replace the upsampling site {site.path!r} ({site.kind}): {site.reason}."
        )
    reference = next(model.get_submodule(site.path).parameters(), None)
    layer = create_upsampler(name, site.in_channels, site.out_channels, scale=site.stride, **options)
    if reference is not None:
        layer = layer.to(device=reference.device, dtype=reference.dtype)
    # The new layer sits where the site's weights were and the site's other modules (resize, pad,
    # shuffle) become Identity, so a Sequential's indices do not move.
    for path in site.modules:
        _set(model, path, layer if path == site.path else nn.Identity())


def replace_upsamplers(model: nn.Module, upsampler: str | Mapping[str, str], **options: Any) -> nn.Module:
    """A copy of ``model`` with its upsampling sites replaced by registry layers, freshly initialised.

    Sites are ``nn.ConvTranspose2d`` layers with a stride above 1, convolutions followed by
    ``nn.PixelShuffle``, ``nn.Upsample`` (and an optional pad module) followed by a convolution, and the
    package's own layers (see :func:`~lightning_checkerboard.adapt.sites.find_upsampling_sites`). Each
    chosen site becomes ``create_upsampler(name, in_channels, out_channels, scale=stride, **options)``,
    on the site's device and dtype, with the same input and output channels and output size; the other
    modules of a multi-module site become ``nn.Identity``. The new weights are fresh because the
    function changes: retrain, or fine-tune, after replacing. ``model`` itself is not modified.

    Args:
        model: any ``nn.Module``.
        upsampler: a registered name for every site, or a mapping of module-path globs (``fnmatch``,
            matched against the site's path, the first matching glob wins) to names; sites no glob
            matches are kept.
        options: passed to every ``create_upsampler`` call (e.g. ``padding="reflect"``).

    Returns:
        The copy; ``replaced_sites`` on it lists ``(path, name)`` of every replaced site.

    Raises:
        TypeError: if ``model`` is not a module or ``upsampler`` neither a name nor a mapping of names.
        ValueError: an unknown upsampler name, or a chosen site whose output size no registry layer can
            match exactly (one line, naming its module path).

    Warns:
        UserWarning: when no site was replaced.

    Example:
        >>> import torch
        >>> from lightning_checkerboard import replace_upsamplers
        >>> gen = nn.Sequential(nn.ConvTranspose2d(8, 4, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(4, 3, 4, 2, 1))
        >>> swapped = replace_upsamplers(gen, {"0": "nearest_conv", "*": "pixel_shuffle_icnr"})
        >>> swapped.replaced_sites
        (('0', 'nearest_conv'), ('2', 'pixel_shuffle_icnr'))
        >>> swapped(torch.randn(1, 8, 4, 4)).shape
        torch.Size([1, 3, 16, 16])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    _check_upsampler(upsampler)
    swapped = copy.deepcopy(model)
    replaced = []
    for site in find_upsampling_sites(swapped):
        name = _choose(upsampler, site.path)
        if name is None:
            continue
        _swap(swapped, site, name, options)
        log.info("replace_upsamplers: %s (%s) -> %s", site.path, site.kind, name)
        replaced.append((site.path, name))
    if not replaced:
        warnings.warn(
            f"replace_upsamplers replaced nothing in {type(model).__name__}: no upsampling site "
            + ("was found." if isinstance(upsampler, str) else f"matches the globs {list(upsampler)}."),
            UserWarning,
            stacklevel=2,
        )
    swapped.replaced_sites = tuple(replaced)
    return swapped
