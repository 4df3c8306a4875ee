"""``replace_upsamplers``: every upsampling site of a model, swapped for a registry layer."""

from __future__ import annotations

import copy
import fnmatch
import inspect
import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from lightning_checkerboard.adapt._fx import install_forward, trace_or_reason
from lightning_checkerboard.adapt.sites import (
    UpsamplingSite,
    _chains,
    _common,
    _graph_steps,
    mode_dependence,
    search_upsampling_sites,
)
from lightning_checkerboard.upsamplers import create_upsampler
from lightning_checkerboard.upsamplers.registry import get_upsampler_factory

__all__ = ["replace_upsamplers"]

log = logging.getLogger(__name__)

_Target = tuple[str, dict[str, Any]]


def _check_target(value: object, where: str) -> _Target:
    if isinstance(value, str):
        return value, {}
    if (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], Mapping)
            and all(isinstance(k, str) for k in value[1])):
        return value[0], dict(value[1])
    raise TypeError(f"{where} must be a registered name or a (name, options dict) pair; got "
                    f"{type(value).__name__}: {value!r}.")


def _check_upsampler(upsampler: object) -> str | dict[str, _Target]:
    if isinstance(upsampler, str):
        return upsampler
    if isinstance(upsampler, Mapping) and all(isinstance(k, str) for k in upsampler):
        return {glob: _check_target(value, f"upsampler[{glob!r}]") for glob, value in upsampler.items()}
    raise TypeError(
        "upsampler must be a registered name or a mapping of module-path globs to names (or to (name, options) "
        f"pairs); got {type(upsampler).__name__}: {upsampler!r}."
    )


def _choose(upsampler: str | dict[str, _Target], path: str) -> _Target | None:
    if isinstance(upsampler, str):
        return upsampler, {}
    for pattern, target in upsampler.items():
        if fnmatch.fnmatchcase(path, pattern):
            return target
    return None


def _example(example_input: object) -> tuple[Any, ...] | None:
    if example_input is None:
        return None
    if isinstance(example_input, Tensor):
        return (example_input,)
    if isinstance(example_input, (tuple, list)) and example_input:
        return tuple(example_input)
    raise TypeError("example_input must be a tensor, a non-empty tuple of the model's positional inputs, or None; "
                    f"got {type(example_input).__name__}.")


def _set(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, module)


def _build(site: UpsamplingSite, name: str, options: dict[str, Any], reference: nn.Module) -> nn.Module:
    if site.bias is False and "bias" not in options:
        # No bias unless the replaced site had one (a conv before a norm layer has none, on purpose).
        try:
            takes_bias = "bias" in inspect.signature(get_upsampler_factory(name)).parameters
        except (TypeError, ValueError):
            takes_bias = False
        if takes_bias:
            options = {**options, "bias": False}
    layer = create_upsampler(name, site.in_channels, site.out_channels, scale=site.stride, **options)
    tensor = next(iter(reference.parameters()), None)
    tensor = next(iter(reference.buffers()), None) if tensor is None else tensor
    if tensor is not None:
        layer = layer.to(device=tensor.device, dtype=tensor.dtype)
    return layer


def _swap_modules(model: nn.Module, site: UpsamplingSite, layer: nn.Module) -> None:
    # The new layer sits where the site's weights were and the site's other modules (resize, pad,
    # shuffle) become Identity, so a Sequential's indices do not move.
    for path in site.modules:
        _set(model, path, layer if path == site.path else nn.Identity())


def _rewrite_forward(model: nn.Module, owner: str, sites: list[tuple[UpsamplingSite, nn.Module]]) -> str:
    """Replace each site's chain in ``owner``'s forward by one call of its new layer; ``""`` or why not."""
    module = model.get_submodule(owner)
    reason = mode_dependence(module)
    if reason:
        return reason
    graph, view = trace_or_reason(module, module.training, True)
    chains = {_common(chain, "")["path"]: chain for _, chain in _chains(_graph_steps(graph, view, owner))}
    missing = [site.path for site, _ in sites if site.path not in chains]
    if missing:
        return f"the traced forward of {owner or 'the model'} has no chain named {missing[0]!r}"
    for site, layer in sites:
        chain = chains[site.path]
        weighted = next(step for step in chain if step.is_module and step.kind in ("conv", "tconv"))
        source = chain[0].node.args[0] if chain[0].node.args else chain[0].node.kwargs["input"]
        last = chain[-1].node
        for step in chain:
            if step.kind == "act":  # a pointwise activation stays, before the new layer
                step.node.args = (source, *step.node.args[1:])
                source = step.node
        with graph.inserting_before(last):
            new = graph.call_module(weighted.node.target, (source,))
        last.replace_all_uses_with(new)
        for step in reversed(chain):
            if step.kind != "act":
                graph.erase_node(step.node)
        _swap_modules(model, site, layer)
    install_forward(module, graph, view, rewritten_by="replace_upsamplers")
    return ""


def replace_upsamplers(
    model: nn.Module,
    upsampler: str | Mapping[str, str | tuple[str, Mapping[str, Any]]],
    example_input: Tensor | Sequence[Any] | None = None,
    *,
    strict: bool = True,
    **options: Any,
) -> nn.Module:
    """A copy of ``model`` with its upsampling sites replaced by registry layers, freshly initialised.

    Sites are those :func:`~lightning_checkerboard.adapt.sites.find_upsampling_sites` finds: transposed
    convolutions with a stride above 1, convolutions followed by a pixel shuffle, resizes followed by a
    convolution (any mode, ``align_corners`` too: the new layer is fresh anyway), resizes alone, and the
    package's own layers; as modules, or as calls in a ``forward``. Each chosen site becomes
    ``create_upsampler(name, in_channels, out_channels, scale=stride, **options)``, on the site's device
    and dtype, with the same channels and output size, and without a bias when the site's convolution
    had none. Where the site is made of modules, the new layer takes the weighted module's place and the
    site's other modules become ``nn.Identity``; where a resize (or pad) is a call in a ``forward``, that
    forward is rewritten with ``torch.fx`` (as :func:`~lightning_checkerboard.adapt.fuse_resize_conv`
    does) so the call is gone and the new layer runs in place of the convolution module. A pointwise
    activation between a resize and its convolution stays, before the new layer. The new weights are fresh
    because the function changes: retrain, or fine-tune, after replacing. ``model`` is not modified.

    Some sites cannot be swapped: an output that is not exactly ``stride``
    times the input, a resize to a fixed size, a convolution written as an ``F.conv2d`` call (no module
    holds its weights), a resize call with no convolution after it, a call in a forward that cannot be
    traced, or (for a resize alone) channels that only an ``example_input`` tells. Choosing one is a
    ``ValueError`` that says why, unless ``strict=False``, which keeps each with its reason.

    Args:
        model: any ``nn.Module``.
        upsampler: a registered name for every site, or a mapping of module-path globs (``fnmatch``,
            matched against the site's path, the first matching glob wins) to a name or to a
            ``(name, options)`` pair whose options apply to those sites only (over ``options``); sites no
            glob matches are kept.
        example_input: the model's input (a tensor, or a tuple of its positional inputs): the sites are
            then found on one run (see :func:`~lightning_checkerboard.adapt.sites.search_upsampling_sites`),
            which also gives a resize's channels. ``None``: the static search.
        strict: raise a ``ValueError`` for the first chosen site that cannot be swapped (the default);
            ``False`` keeps every such site and warns once, one line per site.
        options: passed to every ``create_upsampler`` call (e.g. ``padding="reflect"``).

    Returns:
        The copy; ``replaced_sites`` on it lists ``(path, name)`` of every replaced site and
        ``skipped_sites`` ``(path, reason)`` of every chosen site that was kept.

    Raises:
        TypeError: if ``model`` is not a module, ``upsampler`` neither a name nor a mapping of names or
            pairs, or ``example_input`` not a tensor or tuple.
        ValueError: an unknown upsampler name; with ``strict`` (the default), a chosen site that cannot be
            swapped (one line, naming its path and why).

    Warns:
        UserWarning: when no site was replaced, and (``strict=False``) for chosen sites that were kept (one
            line each).

    Example:
        >>> import torch
        >>> from lightning_checkerboard import replace_upsamplers
        >>> gen = nn.Sequential(nn.ConvTranspose2d(8, 4, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(4, 3, 4, 2, 1))
        >>> swapped = replace_upsamplers(gen, {"0": "nearest_conv", "*": ("pixel_shuffle_icnr", {"bias": False})})
        >>> swapped.replaced_sites
        (('0', 'nearest_conv'), ('2', 'pixel_shuffle_icnr'))
        >>> swapped(torch.randn(1, 8, 4, 4)).shape
        torch.Size([1, 3, 16, 16])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    targets = _check_upsampler(upsampler)
    example = _example(example_input)
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be a bool; got {type(strict).__name__}.")
    swapped = copy.deepcopy(model)
    search = search_upsampling_sites(swapped, example)
    untraced = dict(search.untraced)
    replaced, skipped = [], []
    rewrites: dict[str, list[tuple[UpsamplingSite, nn.Module, str]]] = {}

    def skip(site: UpsamplingSite, reason: str) -> None:
        if strict:
            raise ValueError(f"cannot replace the upsampling site {site.path!r} ({site.kind}): {reason}; "
                             "strict=False keeps such sites (with a warning), or choose sites by glob.")
        skipped.append((site.path, reason))

    for site in search.sites:
        target = _choose(targets, site.path)
        if target is None:
            continue
        name, site_options = target
        if not site.replaceable or site.stride is None:
            skip(site, site.reason or "its factor is not one integer")
            continue
        if site.calls and site.found != "forward":
            skip(site, f"its calls are in a forward that cannot be rewritten: {untraced.get(site.owner, '?')}")
            continue
        layer = _build(site, name, {**options, **site_options}, swapped.get_submodule(site.path))
        if site.calls:
            rewrites.setdefault(site.owner, []).append((site, layer, name))
            continue
        _swap_modules(swapped, site, layer)
        log.info("replace_upsamplers: %s (%s) -> %s", site.path, site.kind, name)
        replaced.append((site.path, name))
    for owner, group in rewrites.items():
        reason = _rewrite_forward(swapped, owner, [(site, layer) for site, layer, _ in group])
        for site, _, name in group:
            if reason:
                skip(site, f"the forward of {owner or 'the model'} cannot be rewritten: {reason}")
            else:
                log.info("replace_upsamplers: %s (%s, in a forward) -> %s", site.path, site.kind, name)
                replaced.append((site.path, name))
    order = {site.path: i for i, site in enumerate(search.sites)}
    replaced.sort(key=lambda item: order[item[0]])
    if skipped:
        warnings.warn(
            f"replace_upsamplers kept {len(skipped)} site(s) of {type(model).__name__}:\n"
            + "\n".join(f"{path}: {reason}" for path, reason in skipped),
            UserWarning,
            stacklevel=2,
        )
    if not replaced:
        warnings.warn(
            f"replace_upsamplers replaced nothing in {type(model).__name__}: no upsampling site "
            + ("was found." if isinstance(upsampler, str) else f"matches the globs {list(upsampler)}.")
            if not skipped else f"replace_upsamplers replaced nothing in {type(model).__name__}.",
            UserWarning,
            stacklevel=2,
        )
    swapped.replaced_sites = tuple(replaced)
    swapped.skipped_sites = tuple(skipped)
    return swapped
