"""``fuse_resize_conv``: every exact resize → 3×3 conv of a model, as one weight-tied transposed conv.

Four places are searched, in this order:

1. the package's own ``ResizeConvUpsample`` layers built with ``impl="reference"``: switched to
   ``impl="fused"`` where that path exists;
2. ``nn.Sequential`` children written as ``nn.Upsample``, an optional pointwise activation (after a
   nearest resize only), an optional one-pixel pad module and an ``nn.Conv2d``: the resize and pad
   become ``nn.Identity``, the activation stays (it commutes with nearest, so it now runs at the low
   resolution) and the conv becomes a :class:`~lightning_checkerboard.adapt.layer.FusedResizeConv2d`
   under the conv's name;
3. third-party blocks an adapter knows by class name (diffusers' ``Upsample2D``);
4. every other module's own ``forward``, traced with ``torch.fx``: ``F.interpolate`` (or an
   ``nn.Upsample`` child), an optional ``F.pad`` (or pad child) and ``F.conv2d`` (or a conv child)
   become one call of the fused function (a pointwise activation after a nearest resize stays, before
   it). A module that cannot be traced, whose graph changes with training or grad mode, or whose
   forward writes attributes on ``self`` is left as it is; its children are still searched. A
   module-level helper function that cannot be traced is kept as one call. The rewritten forward is the
   traced graph, so other Python state it reads (a flag, a config value) keeps the value it had at
   conversion.

Parameters stay where they were, so every state-dict key is unchanged and checkpoints load both ways.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from lightning_checkerboard.adapt._diffusers import fuse_adapted, is_diffusers_upsample2d, upsample2d_conv
from lightning_checkerboard.adapt._fx import fuse_forward
from lightning_checkerboard.adapt.layer import FusedResizeConv2d, conv_refusal, refuse
from lightning_checkerboard.adapt.patterns import (
    conv_padding,
    fusable_padding,
    is_pointwise_module,
    pad_of_module,
    resize_of_module,
)
from lightning_checkerboard.upsamplers.layers import ResizeConvUpsample, Upsampler

__all__ = ["FusedSite", "fuse_resize_conv"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FusedSite:
    """One fused resize-convolution: where it is, how it was written, what it computes.

    Attributes:
        path: the module path of the fused conv (module pattern) or of the module whose ``forward``
            was rewritten (``forward`` pattern and adapters).
        pattern: ``"layer"`` (a package layer switched to its fused path), ``"modules"``, ``"forward"`` or
            the adapter's name (``"diffusers.Upsample2D"``).
        mode: ``"nearest"`` or ``"bilinear"``.
        scale: the resize factor.
        padding: ``"zeros"`` or ``"reflect"``.
    """

    path: str
    pattern: str
    mode: str
    scale: int
    padding: str

    def __str__(self) -> str:
        where = self.path or "<root>"
        return f"{where}: {self.mode} ×{self.scale} + 3×3 conv, {self.padding} padding ({self.pattern})"


def _qualify(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _fuse_sequential(path: str, seq: nn.Sequential) -> list[FusedSite]:
    names = list(seq._modules)
    sites, i = [], 0
    while i < len(names):
        resize = resize_of_module(seq._modules[names[i]])
        j, pad, activation = i + 1, None, None
        # A pointwise activation after a nearest resize commutes with it: it stays, at low resolution.
        if resize is not None and resize.mode == "nearest" and j < len(names) and is_pointwise_module(
                seq._modules[names[j]]):
            activation, j = names[j], j + 1
        if resize is not None and j < len(names):
            pad = pad_of_module(seq._modules[names[j]])
            j += pad is not None
        padding = None
        if resize is not None and j < len(names):
            # An adapter wrapping the conv (base_layer) hides a site that would fuse: refused below, with why.
            candidate = seq._modules[names[j]]
            padding = fusable_padding(resize, pad, conv_padding(getattr(candidate, "base_layer", candidate)))
        if padding is None:
            i += 1
            continue
        conv = seq._modules[names[j]]
        reason = conv_refusal(conv)
        if reason is not None:
            refuse(_qualify(path, names[j]), reason)
            i = j + 1
            continue
        for name in names[i:j]:
            if name != activation:
                setattr(seq, name, nn.Identity())
        setattr(seq, names[j], FusedResizeConv2d.from_conv(conv, mode=resize.mode, scale=resize.scale,
                                                           padding=padding))
        sites.append(FusedSite(_qualify(path, names[j]), "modules", resize.mode, resize.scale, padding))
        i = j + 1
    return sites


def _is_sequential(module: nn.Module) -> bool:
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


def _traceable(module: nn.Module) -> bool:
    # torch's own modules are leaves of every trace; the package's layers are already what they say;
    # a module whose forward was replaced on the instance has been converted.
    return not (type(module).__module__.startswith("torch.") or isinstance(module, Upsampler)
                or "forward" in vars(module))


def _deepcopy(model: nn.Module) -> nn.Module:
    """``copy.deepcopy(model)``, also for modules holding computed tensors as plain attributes.

    The hook-based ``weight_norm``, ``spectral_norm`` and ``prune`` keep ``weight`` as a tensor computed
    from the parameters (not a graph leaf, which deepcopy refuses) and recompute it before every call;
    the copy gets a detached snapshot in its place.
    """
    memo: dict[int, object] = {}
    modules = list(model.modules())
    modules += [module._conv for module in modules if isinstance(module, FusedResizeConv2d)]  # held, not children
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, torch.Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    return copy.deepcopy(model, memo)


def fuse_resize_conv(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in which every exact resize → 3×3 convolution runs as one fused layer.

    A site is a nearest (any integer factor) or bilinear (``align_corners=False``, ×2) resize followed
    by a 3×3, stride-1 convolution padded by one pixel with zeros or reflection, as modules in an
    ``nn.Sequential``, as calls in a ``forward``, or as diffusers' ``Upsample2D``. Each runs as the
    package's weight-tied transposed convolution with the same parameters: outputs and gradients equal
    the original's to float round-off, every state-dict key is unchanged (``load_state_dict`` works in
    both directions) and ``model`` itself is not modified.

    The fused sites are logged (logger ``lightning_checkerboard.adapt.fuse``) and kept on the copy as
    ``fused_sites``, a tuple of :class:`FusedSite`. A module whose ``forward`` was rewritten keeps its
    class and methods; its new ``forward`` lives on the instance, which pickling cannot keep, so
    pickling it (``torch.save`` of the whole model) raises ``pickle.PicklingError``: save the copy's
    ``state_dict()``, load it into the original architecture and fuse again.

    A site computes with its conv's effective weight (parametrizations and the weight-norm,
    spectral-norm and pruning hooks included). A conv that does more than its weight says (forward or
    backward hooks, other pre-hooks, a forward of its own, an adapter wrapping it) is left unfused, and
    the reason is logged and warned (:func:`~lightning_checkerboard.adapt.layer.conv_refusal`).

    Args:
        model: any ``nn.Module``.

    Returns:
        The converted copy, with ``fused_sites``; ``skipped_sites``, ``(path, reason)`` of every other
        upsampling site (:func:`~lightning_checkerboard.adapt.sites.find_upsampling_sites`) it left as
        is; and ``untraced_modules``, ``(path, reason)`` of every module whose forward ``torch.fx`` could
        not trace, so its calls were not searched.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module``.

    Warns:
        UserWarning: when no site was fused (the copy computes exactly what ``model`` does), with one
            line per skipped site and per untraced module and its reason; and for
            each site left unfused because of its conv, with the reason.

    Example:
        >>> import torch
        >>> from lightning_checkerboard import fuse_resize_conv
        >>> model = nn.Sequential(nn.Upsample(scale_factor=2), nn.ReflectionPad2d(1), nn.Conv2d(8, 4, 3))
        >>> fused = fuse_resize_conv(model)
        >>> [str(site) for site in fused.fused_sites]
        ['2: nearest ×2 + 3×3 conv, reflect padding (modules)']
        >>> x = torch.randn(1, 8, 6, 6)
        >>> torch.allclose(fused(x), model(x), atol=1e-5)
        True
        >>> _ = fused.load_state_dict(model.state_dict())  # same keys
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    fused = _deepcopy(model)
    sites: list[FusedSite] = []
    for path, module in fused.named_modules():
        if isinstance(module, ResizeConvUpsample) and module.impl == "reference" and (
                module.mode == "nearest" or module.scale == 2):
            module.impl = "fused"
            sites.append(FusedSite(path, "layer", module.mode, module.scale, module.padding))
    for path, module in list(fused.named_modules()):
        if _is_sequential(module):
            sites += _fuse_sequential(path, module)
    for path, module in list(fused.named_modules()):
        adapted = fuse_adapted(module, path) if "forward" not in vars(module) else None
        if adapted is not None:
            kind, resize, padding = adapted
            sites.append(FusedSite(path, kind, resize.mode, resize.scale, padding))
    for path, module in list(fused.named_modules()):
        if _traceable(module):
            sites += [FusedSite(path, "forward", r.mode, r.scale, p) for r, p in fuse_forward(module)]
    for site in sites:
        log.info("fuse_resize_conv: fused %s", site)
    skipped, untraced, already = _left_unfused(fused)
    if not sites:
        details = [f"{path or '<root>'}: {reason}" for path, reason in skipped]
        details += [f"{path or '<root>'} (not searched): {reason}" for path, reason in untraced]
        warnings.warn(
            f"fuse_resize_conv found no nearest/bilinear resize followed by a 3×3 stride-1 convolution padded "
            f"by one pixel that it could fuse in {type(model).__name__}"
            + (f" ({already} site(s) already run fused)" if already else "")
            + "; the copy is unchanged."
            + "".join(f"\n{line}" for line in details),
            UserWarning,
            stacklevel=2,
        )
    for path, reason in untraced:
        log.info("fuse_resize_conv: %s not searched: %s", path or "<root>", reason)
    fused.fused_sites = tuple(sites)
    fused.skipped_sites = tuple(skipped)
    fused.untraced_modules = tuple(untraced)
    return fused


def _left_unfused(fused: nn.Module) -> tuple[list[tuple[str, str]], list[tuple[str, str]], int]:
    """``(path, reason)`` of every upsampling site left unfused and of every module not traced; the sites fused."""
    from lightning_checkerboard.adapt.sites import search_upsampling_sites

    search = search_upsampling_sites(fused)
    skipped = []
    for site in search.sites:
        if site.fusable == "fused" or site.kind == "resize" and not site.note:
            continue
        reason = site.note
        if not reason and site.kind != "resize_conv":
            reason = f"a {site.kind.replace('_', ' ')} has no resize to fuse"
        if not reason:
            conv = fused.get_submodule(site.path) if site.path in dict(fused.named_modules()) else None
            conv = upsample2d_conv(conv) if conv is not None and is_diffusers_upsample2d(conv) else conv
            reason = (conv_refusal(conv) if conv is not None else None) or (
                "its forward depends on training or grad mode" if site.found == "forward" else "it was left as is")
        skipped.append((site.path, reason))
    return skipped, list(search.untraced), sum(site.fusable == "fused" for site in search.sites)
