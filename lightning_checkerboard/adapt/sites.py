"""Finding the upsampling sites of a model: where a layer makes the feature map larger.

A site is one of

- ``transposed_conv``: a transposed convolution (``nn.ConvTranspose2d`` or an ``F.conv_transpose2d``
  call) with a stride above 1;
- ``pixel_shuffle``: a convolution whose output goes only to a pixel shuffle (``nn.PixelShuffle`` or
  ``F.pixel_shuffle``);
- ``resize_conv``: a resize (``nn.Upsample`` or ``F.interpolate``), optionally a pointwise activation
  (``nn.GELU``, ``F.relu``, ...) and a pad, then a convolution, each the only user of the one before;
- ``resize``: a resize that no convolution takes directly (a U-Net's ``nn.Upsample`` before a
  concatenation, the nearest-upsampled residual of a super-resolution network);
- ``resize_conv`` also for diffusers' ``Upsample2D`` in its nearest-then-conv configuration (it is called
  with an ``output_size`` that registry layers do not take, so :func:`replace_upsamplers
  <lightning_checkerboard.adapt.replace_upsamplers>` refuses it);
- a layer of the package itself (:class:`~lightning_checkerboard.upsamplers.layers.Upsampler`: what the
  registry builds, and what :func:`~lightning_checkerboard.adapt.fuse_resize_conv` leaves), of the kind
  it computes.

Where they are looked for. Without an example input, statically: every module of the model, the
children of each ``nn.Sequential`` in order, and each other module's own ``forward`` traced with
``torch.fx`` (children as leaves), so a resize written as an ``F.interpolate`` call is found too; a
forward that cannot be traced is listed with the tracer's reason (:func:`search_upsampling_sites`).
With an example input, on the model's execution: one forward on that input, with hooks on every module
and a ``TorchFunctionMode`` that sees every functional call, so sites inside forwards that ``torch.fx``
cannot trace (shape branches, asserts, attribute writes) and chains that cross module boundaries are
found; sites the static search finds but the input does not run are kept.

Sites are named by their ``path``: the module holding the site's weights (the convolution, the transposed
convolution, the package layer), or the resize module of a ``resize`` site; a site whose weighted layer
is a call is named ``"owner:function"`` (the module whose ``forward`` makes the call, then the
function: ``"decoder:interpolate"``, with ``#2``, ``#3``, ... for later calls of the same function in
that forward).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from lightning_checkerboard.adapt._diffusers import is_diffusers_upsample2d, upsample2d_conv, upsample2d_padding
from lightning_checkerboard.adapt._fx import trace_or_reason
from lightning_checkerboard.adapt.layer import FusedResizeConv2d, conv_refusal, fused_conv_call, resize_conv2d
from lightning_checkerboard.adapt.patterns import (
    POINTWISE_FUNCTIONS,
    POINTWISE_METHODS,
    Resize,
    _conv_padding,
    _integer_scale,
    _resize,
    bind_call,
    fusable_padding,
    is_pointwise_module,
    pad_of_call,
    pad_of_module,
)
from lightning_checkerboard.functional.overlap import overlap_ratio
from lightning_checkerboard.upsamplers.layers import (
    DeconvBlurUpsample,
    DeconvUpsample,
    PixelShuffleUpsample,
    ResizeConvUpsample,
    Upsampler,
)

__all__ = ["SiteSearch", "UpsamplingSite", "find_upsampling_sites", "search_upsampling_sites"]


@dataclass(frozen=True)
class UpsamplingSite:
    """One place where a model upsamples.

    Attributes:
        path: the site's name (see the module docstring): the module holding its weights, the resize
            module of a ``resize`` site, or ``"owner:function"`` for a call.
        kind: ``"transposed_conv"``, ``"transposed_conv+blur"``, ``"pixel_shuffle"``, ``"resize_conv"``,
            ``"resize"`` or the class name of another package layer.
        modules: paths of the modules that make up the site, in order (a pointwise activation between
            a resize and its convolution is not one: it stays where it is when the site is replaced).
        in_channels: channels in (``None`` where unknown: a resize found without an example input).
        out_channels: channels out (``None`` where unknown).
        kernel: the convolution's kernel size (``None`` where a layer does not say, or for a resize).
        stride: the upsampling factor (``None`` where it is not one integer for both axes).
        overlap: max/min overlap ratio in 2-D of the transposed convolution the site amounts to (1.0:
            even overlap); ``None`` where unknown.
        fusable: ``"yes"`` if :func:`~lightning_checkerboard.adapt.fuse_resize_conv` fuses it exactly,
            ``"fused"`` if it already runs fused, else ``"no"`` (``note`` says why).
        replaceable: whether a registry layer can take its place: output exactly ``stride`` times the
            input, and a module to put it in; else ``reason`` says why not.
        reason: why no registry layer can take its place (empty when one can).
        owner: the module whose ``forward`` runs the site ("" for the model itself).
        found: ``"modules"`` (a module, or children of an ``nn.Sequential``), ``"forward"`` (a traced
            ``forward``) or ``"execution"`` (only the run on the example input saw it).
        calls: the functions called for the site (``"owner:interpolate"``, ...), empty for module sites.
        bias: whether the site's convolution adds a bias (``None`` where unknown); a resize has none.
        note: why ``fuse_resize_conv`` cannot fuse it (empty when it can, or when it has no convolution
            to fuse with).
    """

    path: str
    kind: str
    modules: tuple[str, ...]
    in_channels: int | None
    out_channels: int | None
    kernel: int | None
    stride: int | None
    overlap: float | None
    fusable: str
    replaceable: bool
    reason: str = ""
    owner: str = ""
    found: str = "modules"
    calls: tuple[str, ...] = ()
    bias: bool | None = None
    note: str = ""


@dataclass(frozen=True)
class SiteSearch:
    """What :func:`search_upsampling_sites` found.

    Attributes:
        sites: every site, in module order (static search) or in execution order (with an example input;
            sites the input did not run come last).
        untraced: ``(module path, reason)`` of every module whose own ``forward`` could not be traced with
            ``torch.fx``, so its calls were not searched statically.
        outputs: each site's output on the example input, by path (empty without one).
    """

    sites: tuple[UpsamplingSite, ...]
    untraced: tuple[tuple[str, str], ...]
    outputs: Mapping[str, Any] = field(default_factory=dict)


# ---- the pieces of a site, read from a module or from a call


def _pair(value: object) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _square(value: object) -> int | None:
    values = _pair(value)
    return values[0] if values[0] == values[1] and isinstance(values[0], int) else None


def _qualify(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _torch_forward(module: nn.Module) -> bool:
    """Whether ``module`` runs a forward that torch defines (not a subclass's own, not one set on it)."""
    return "forward" not in vars(module) and getattr(type(module).forward, "__module__", "").startswith("torch.nn")


@dataclass(frozen=True)
class _Conv:
    in_channels: int | None
    out_channels: int | None
    kernel: tuple
    stride: tuple
    padding: Any
    dilation: tuple
    groups: int
    padding_mode: str = "zeros"
    bias: bool | None = None
    output_padding: tuple = (0, 0)

    @property
    def fusable_padding(self) -> str | None:
        return _conv_padding(self.kernel, self.stride, self.dilation, self.groups, self.padding, self.padding_mode)

    def keeps_size(self, extra_padding: int = 0) -> bool:
        if None in self.kernel:
            return False  # a call whose weight the search could not see
        if self.padding == "same":
            return extra_padding == 0 and self.stride == (1, 1)
        pads = (0, 0) if self.padding == "valid" else _pair(self.padding)
        return self.stride == (1, 1) and all(
            2 * (pads[a] + extra_padding) == self.dilation[a] * (self.kernel[a] - 1) for a in range(2))


def _conv_of_module(conv: nn.Module) -> _Conv:
    return _Conv(conv.in_channels, conv.out_channels, tuple(conv.kernel_size), tuple(conv.stride),
                 conv.padding if isinstance(conv.padding, str) else tuple(conv.padding), tuple(conv.dilation),
                 conv.groups, conv.padding_mode, conv.bias is not None,
                 tuple(getattr(conv, "output_padding", (0, 0))))


_CONV = inspect.Signature([
    inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d)
    for n, d in (("input", inspect.Parameter.empty), ("weight", inspect.Parameter.empty), ("bias", None),
                 ("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1))])
_CONV_TRANSPOSE = inspect.Signature([
    inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d)
    for n, d in (("input", inspect.Parameter.empty), ("weight", inspect.Parameter.empty), ("bias", None),
                 ("stride", 1), ("padding", 0), ("output_padding", 0), ("groups", 1), ("dilation", 1))])
_INTERPOLATE = inspect.signature(F.interpolate)


def _conv_of_call(args: Sequence, kwargs: Mapping, weight_shape: tuple | None, transposed: bool) -> _Conv | None:
    call = bind_call(_CONV_TRANSPOSE if transposed else _CONV, args, kwargs)
    if call is None:
        return None
    groups = call["groups"] if isinstance(call["groups"], int) else 1
    kernel, in_channels, out_channels = (None, None), None, None
    if weight_shape is not None and len(weight_shape) == 4:
        kernel = tuple(weight_shape[-2:])
        if transposed:
            in_channels, out_channels = weight_shape[0], weight_shape[1] * groups
        else:
            in_channels, out_channels = weight_shape[1] * groups, weight_shape[0]
    padding = call["padding"] if isinstance(call["padding"], str) else _pair(call["padding"])
    bias = None if call["bias"] is None and weight_shape is None else call["bias"] is not None
    return _Conv(in_channels, out_channels, kernel, _pair(call["stride"]), padding, _pair(call["dilation"]), groups,
                 "zeros", bias, _pair(call.get("output_padding", 0)))


@dataclass(frozen=True)
class _Resize:
    exact: Resize | None  # what fuse_resize_conv can fuse
    scale: int | None  # the integer factor, whatever the mode
    text: str  # how it is written, for messages
    fixed_size: bool  # an output size, not a factor


def _resize_info(size: object, scale_factor: object, mode: object, align_corners: object,
                 antialias: object = False) -> _Resize:
    exact = _resize(size, scale_factor, mode, align_corners, antialias)
    scale = _integer_scale(scale_factor) if size is None and scale_factor is not None else None
    text = f"size={size}, scale_factor={scale_factor}, mode={mode!r}"
    if align_corners:
        text += ", align_corners=True"
    return _Resize(exact, scale, text, size is not None)


def _pad_width(padding: object) -> int | None:
    values = list(padding) if isinstance(padding, (tuple, list)) else [padding]
    return values[0] if values and all(v == values[0] for v in values) and isinstance(values[0], int) else None


_PAD_MODULES = (nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d)
# Calls that read a tensor's metadata, not its values: not a use that breaks a chain.
_METADATA_METHODS = {"size", "dim", "shape", "numel", "ndim", "dtype", "device"}
_NAMED_CALLS = {F.interpolate: "interpolate", F.pad: "pad", torch.conv2d: "conv2d",
                torch.conv_transpose2d: "conv_transpose2d", torch.pixel_shuffle: "pixel_shuffle"}


def _is_adapted_block(module: nn.Module) -> bool:
    return (is_diffusers_upsample2d(module) and getattr(module, "use_conv", False)
            and getattr(module, "interpolate", False) and not getattr(module, "use_conv_transpose", False)
            and isinstance(upsample2d_conv(module), nn.Conv2d))


def _is_leaf(module: nn.Module) -> bool:
    """Whether a run treats ``module`` as one step (its inner calls unseen)."""
    if isinstance(module, Upsampler) or _is_adapted_block(module):
        return True
    return not isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)) and _torch_forward(module)


# ---- steps: one record per call, whether read from a graph, a Sequential or a run


@dataclass(eq=False)
class _Step:
    kind: str  # resize, pad, act, conv, tconv, shuffle, layer, fused, other
    name: str
    owner: str
    is_module: bool = False
    module: nn.Module | None = None
    source: _Step | None = None
    consumers: list[_Step] = field(default_factory=list)
    users: int = 0
    resize: _Resize | None = None
    pad: str | None = None  # the fusable padding kind of a one-pixel pad
    pad_width: int | None = None
    conv: _Conv | None = None
    factor: int | None = None
    fused: tuple[str, int, str] | None = None  # (mode, scale, padding) of a fused call
    input_shape: tuple[int, ...] | None = None
    observed_scale: int | None = None  # a resize's factor as the run saw it (for one written as a size)
    output: Any = None
    node: fx.Node | None = None  # the graph node a traced step was read from


def _module_step(module: nn.Module, path: str, owner: str) -> _Step:
    step = _Step("other", path, owner, is_module=True, module=module)
    if isinstance(module, Upsampler) or _is_adapted_block(module):
        step.kind = "layer"
    elif isinstance(module, nn.Upsample) and type(module).forward is nn.Upsample.forward:
        step.kind = "resize"
        step.resize = _resize_info(module.size, module.scale_factor, module.mode, module.align_corners)
    elif isinstance(module, _PAD_MODULES) and _torch_forward(module):
        step.kind, step.pad, step.pad_width = "pad", pad_of_module(module), _pad_width(module.padding)
    elif isinstance(module, nn.ConvTranspose2d) and _torch_forward(module):
        step.kind, step.conv = "tconv", _conv_of_module(module)
    elif isinstance(module, nn.Conv2d) and _torch_forward(module):
        step.kind, step.conv = "conv", _conv_of_module(module)
    elif isinstance(module, nn.PixelShuffle) and _torch_forward(module):
        step.kind, step.factor = "shuffle", module.upscale_factor
    elif is_pointwise_module(module):
        step.kind = "act"
    return step


def _call_name(function: str, owner: str, counters: dict[str, int]) -> str:
    counters[function] = counters.get(function, 0) + 1
    count = counters[function]
    return f"{owner}:{function}" + (f"#{count}" if count > 1 else "")


def _call_step(function: Callable, args: Sequence, kwargs: Mapping, owner: str, counters: dict[str, int],
               weight_shape: Callable[[Any], tuple | None]) -> _Step:
    """A step for a call of ``function``; ``weight_shape`` reads the shape of a weight argument."""
    name = _NAMED_CALLS.get(function)
    if function is resize_conv2d:
        name = "interpolate"  # a fused chain is named like the call it replaced
    step = _Step("other", _call_name(name, owner, counters) if name else f"{owner}:call", owner)
    if function is F.interpolate:
        call = bind_call(_INTERPOLATE, args, kwargs)
        if call is not None:
            step.kind = "resize"
            step.resize = _resize_info(call["size"], call["scale_factor"], call["mode"], call["align_corners"],
                                       call["antialias"])
    elif function is F.pad:
        pad = args[1] if len(args) > 1 else kwargs.get("pad")
        if isinstance(pad, (tuple, list)) and len(pad) == 4:
            step.kind, step.pad, step.pad_width = "pad", pad_of_call(args, kwargs), _pad_width(pad)
    elif function in (torch.conv2d, torch.conv_transpose2d):
        transposed = function is torch.conv_transpose2d
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
        conv = _conv_of_call(args, kwargs, weight_shape(weight), transposed)
        if conv is not None:
            step.kind, step.conv = ("tconv" if transposed else "conv"), conv
    elif function is torch.pixel_shuffle:
        factor = args[1] if len(args) > 1 else kwargs.get("upscale_factor")
        if isinstance(factor, int):
            step.kind, step.factor = "shuffle", factor
    elif function in POINTWISE_FUNCTIONS:
        step.kind = "act"
    elif function is resize_conv2d:
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
        shape = weight_shape(weight)
        step.kind, step.fused = "fused", (kwargs.get("mode"), kwargs.get("scale"), kwargs.get("padding"))
        if shape is not None and len(shape) == 4:
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            step.conv = _Conv(shape[1], shape[0], tuple(shape[-2:]), (1, 1), (1, 1), (1, 1), 1, "zeros",
                              bias is not None)
    return step


def _fused_step(name: str, owner: str, conv: nn.Module, options: Mapping[str, Any]) -> _Step:
    """A conv module called on the fused path by a rewritten forward."""
    step = _Step("fused", name, owner, is_module=True, module=conv)
    step.fused = (options.get("mode"), options.get("scale"), options.get("padding"))
    if isinstance(conv, nn.Conv2d):
        step.conv = _conv_of_module(conv)
    return step


def _link(step: _Step, source: _Step | None) -> None:
    if source is not None:
        step.source = source
        source.consumers.append(step)


# ---- chains of steps -> sites


def _single(step: _Step) -> _Step | None:
    return step.consumers[0] if step.users == 1 and len(step.consumers) == 1 else None


def _chains(steps: Sequence[_Step]) -> Iterator[tuple[str, list[_Step]]]:
    taken: set[int] = set()
    for step in steps:
        if id(step) in taken:
            continue
        if step.kind == "resize":
            chain, following = [step], _single(step)
            if following is not None and following.kind == "act":
                chain.append(following)
                following = _single(following)
            if following is not None and following.kind == "pad":
                chain.append(following)
                following = _single(following)
            if following is not None and following.kind == "conv":
                chain.append(following)
                taken.update(map(id, chain))
                yield "resize_conv", chain
            else:
                yield "resize", [step]
        elif step.kind == "conv":
            following = _single(step)
            if following is not None and following.kind == "shuffle":
                taken.add(id(following))
                yield "pixel_shuffle", [step, following]
        elif step.kind == "tconv" and step.conv is not None and any(s != 1 for s in step.conv.stride):
            yield "transposed_conv", [step]
        elif step.kind in ("layer", "fused"):
            yield step.kind, [step]


def _common(chain: list[_Step], found: str) -> dict[str, Any]:
    weighted = next((s for s in chain if s.is_module and s.kind in ("conv", "tconv", "layer", "fused")), None)
    return {
        "path": weighted.name if weighted is not None else chain[0].name,
        "modules": tuple(s.name for s in chain if s.is_module and s.kind != "act"),
        "owner": chain[0].owner,
        "found": found,
        "calls": tuple(s.name for s in chain if not s.is_module),
    }


def _transposed_conv_site(chain: list[_Step], found: str) -> UpsamplingSite:
    conv = chain[0].conv
    stride, kernel = _square(conv.stride), _square(conv.kernel)
    reason = ""
    if stride is None or kernel is None:
        reason = (f"its stride {conv.stride} or kernel {conv.kernel} differs between axes or is unknown, "
                  "which no registry layer matches")
    else:
        for axis in range(2):
            k, p, d, op = conv.kernel[axis], _pair(conv.padding)[axis], conv.dilation[axis], conv.output_padding[axis]
            if d * (k - 1) + op + 1 - 2 * p != stride:
                reason = (f"its output is (n-1)*{stride} - 2*{p} + {d}*({k}-1) + {op} + 1, not {stride}*n, "
                          "which no registry layer matches")
                break
    if not reason and not chain[0].is_module:
        reason = (f"it is an F.conv_transpose2d call in the forward of {_owner(chain[0].owner)}: "
                  "no module to swap")
    overlap = overlap_ratio(kernel, stride, ndim=2) if stride and kernel and kernel >= 1 and stride >= 1 else None
    return UpsamplingSite(kind="transposed_conv", in_channels=conv.in_channels, out_channels=conv.out_channels,
                          kernel=kernel, stride=stride, overlap=overlap, fusable="no", replaceable=not reason,
                          reason=reason, bias=conv.bias, **_common(chain, found))


def _pixel_shuffle_site(chain: list[_Step], found: str) -> UpsamplingSite:
    conv, stride = chain[0].conv, chain[1].factor
    kernel = _square(conv.kernel)
    reason = ""
    if None in conv.kernel:
        reason = "its convolution's weight is computed in the forward, so its shape is unknown without an input"
    elif not conv.keeps_size():
        reason = "its convolution changes the size before the shuffle, so its output is not a scaled input"
    if conv.out_channels is not None and conv.out_channels % stride**2:
        reason = f"its convolution's {conv.out_channels} channels are not a multiple of {stride}²"
    if not reason and not chain[0].is_module:
        reason = f"its convolution is an F.conv2d call in the forward of {_owner(chain[0].owner)}: no module to swap"
    # A sub-pixel convolution is a transposed convolution of kernel stride*k: every output is painted
    # by the same number of taps.
    overlap = overlap_ratio(stride * kernel, stride, ndim=2) if kernel and stride > 1 else None
    out_channels = conv.out_channels // stride**2 if conv.out_channels is not None else None
    return UpsamplingSite(kind="pixel_shuffle", in_channels=conv.in_channels, out_channels=out_channels, kernel=kernel,
                          stride=stride if stride > 1 else None, overlap=overlap, fusable="no",
                          replaceable=not reason, reason=reason, bias=conv.bias, **_common(chain, found))


def _resize_stride(step: _Step) -> int | None:
    """A resize's integer factor: as written, else (a size) as the run saw it."""
    return step.resize.scale if step.resize.scale is not None else step.observed_scale


def _resize_overlap(step: _Step) -> float | None:
    # A resize is a transposed convolution with its filter (a box of `s` taps, a triangle of 2s):
    # even overlap, whatever conv follows.
    scale, exact = _resize_stride(step), step.resize.exact
    if scale is None:
        return None
    return overlap_ratio(scale * (1 if exact is not None and exact.mode == "nearest" else 2), scale, ndim=2)


def _resize_reason(resize: _Resize) -> str:
    if resize.fixed_size:
        return f"its resize ({resize.text}) sets an output size, not a factor, which registry layers do not take"
    if resize.scale is None:
        return f"its resize ({resize.text}) is not an integer resize, which the registry layers make"
    return ""


def _resize_conv_site(chain: list[_Step], found: str) -> UpsamplingSite:
    resize_step, conv_step = chain[0], chain[-1]
    act = next((s for s in chain if s.kind == "act"), None)
    pad = next((s for s in chain if s.kind == "pad"), None)
    resize, conv = resize_step.resize, conv_step.conv
    reason = _resize_reason(resize)
    if not reason and not conv.keeps_size(pad.pad_width or 0 if pad is not None else 0):
        reason = "its convolution changes the size after the resize, so its output is not a scaled input"
    if not reason and pad is not None and pad.pad_width is None:
        reason = "its pad is not the same on every side, so its output is not a scaled input"
    if not reason and not conv_step.is_module:
        reason = f"its convolution is an F.conv2d call in the forward of {_owner(conv_step.owner)}: no module to swap"
    note = _fuse_note(resize, act, pad, conv)
    return UpsamplingSite(kind="resize_conv", in_channels=conv.in_channels, out_channels=conv.out_channels,
                          kernel=_square(conv.kernel), stride=_resize_stride(resize_step),
                          overlap=_resize_overlap(resize_step),
                          fusable="no" if note else "yes", replaceable=not reason, reason=reason, bias=conv.bias,
                          note=note, **_common(chain, found))


def _owner(owner: str) -> str:
    return repr(owner) if owner else "the model"


def _fuse_note(resize: _Resize, act: _Step | None, pad: _Step | None, conv: _Conv) -> str:
    if resize.exact is None:
        return (f"its resize ({resize.text}) is neither nearest at an integer factor nor bilinear ×2 "
                "without align_corners")
    if act is not None and resize.exact.mode != "nearest":
        return "an activation between a bilinear resize and the convolution does not commute with the resize"
    if conv.fusable_padding is None:
        return ("its convolution is not 3×3, stride 1, dilation 1, groups 1, padded by 0 or 1 pixel "
                "with zeros, reflect or replicate")
    if pad is not None and pad.pad is None:
        return "its pad is not one pixel of zeros, reflect or replicate on every side"
    if fusable_padding(resize.exact, pad.pad if pad is not None else None, conv.fusable_padding) is None:
        if resize.exact.mode == "bilinear" and resize.exact.scale != 2:
            return "the fused bilinear path is for ×2"
        return "its padding (pad then padded convolution, or replicate after bilinear) has no fused form"
    return ""


def _resize_site(chain: list[_Step], found: str) -> UpsamplingSite:
    step = chain[0]
    resize = step.resize
    channels = step.input_shape[1] if step.input_shape is not None and len(step.input_shape) == 4 else None
    reason = _resize_reason(resize)
    if not reason and not step.is_module:
        reason = (f"it is an F.interpolate call in the forward of {_owner(step.owner)} with no convolution "
                  "after it: no module to swap")
    if not reason and channels is None:
        reason = "its channels are unknown without an example input"
    return UpsamplingSite(kind="resize", in_channels=channels, out_channels=channels, kernel=None,
                          stride=_resize_stride(step), overlap=_resize_overlap(step), fusable="no",
                          replaceable=not reason, reason=reason, bias=False, **_common(chain, found))


def _package_layer_site(chain: list[_Step], found: str) -> UpsamplingSite:
    layer = chain[0].module
    if _is_adapted_block(layer):
        conv = upsample2d_conv(layer)
        fusable = "fused" if "forward" in vars(layer) else "yes" if upsample2d_padding(layer) is not None else "no"
        return UpsamplingSite(
            kind="resize_conv", in_channels=conv.in_channels, out_channels=conv.out_channels,
            kernel=_square(conv.kernel_size), stride=2, overlap=overlap_ratio(2, 2, ndim=2), fusable=fusable,
            replaceable=False, bias=conv.bias is not None,
            reason="diffusers' Upsample2D is called with an output_size that registry layers do not take",
            note="" if fusable != "no" else "its configuration (a norm, or another conv) has no fused form",
            **_common(chain, found))
    kernel, overlap, fusable, kind, s = None, None, "no", type(layer).__name__, layer.scale
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
    bias = next((m.bias is not None for m in layer.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))),
                getattr(layer, "bias", None) is not None)
    return UpsamplingSite(kind=kind, in_channels=layer.in_channels, out_channels=layer.out_channels, kernel=kernel,
                          stride=s, overlap=overlap, fusable=fusable, replaceable=True, bias=bias,
                          note="no fused bilinear path at this scale" if (fusable, kind) == ("no", "resize_conv") else "",
                          **_common(chain, found))


def _fused_call_site(chain: list[_Step], found: str) -> UpsamplingSite:
    step = chain[0]
    mode, scale, _ = step.fused
    conv = step.conv
    return UpsamplingSite(
        kind="resize_conv", in_channels=conv.in_channels if conv else None,
        out_channels=conv.out_channels if conv else None, kernel=3, stride=scale,
        overlap=(overlap_ratio(scale * (2 if mode == "bilinear" else 1), scale, ndim=2)
                 if isinstance(scale, int) else None),
        fusable="fused", replaceable=False, bias=conv.bias if conv else None,
        reason=f"it runs fused in the rewritten forward of {_owner(step.owner)}: replace the original model's site",
        **_common(chain, found))


_SITE_BUILDERS = {"transposed_conv": _transposed_conv_site, "pixel_shuffle": _pixel_shuffle_site,
                  "resize_conv": _resize_conv_site, "resize": _resize_site, "layer": _package_layer_site,
                  "fused": _fused_call_site}


def _sites(steps: Sequence[_Step], found: str) -> list[tuple[UpsamplingSite, _Step]]:
    """Every site in ``steps`` with the step whose output is the site's output."""
    return [(_SITE_BUILDERS[kind](chain, found), chain[-1]) for kind, chain in _chains(steps)]


# ---- the static search: modules, Sequentials, traced forwards


def _sequential_steps(seq: nn.Sequential, path: str) -> list[_Step]:
    steps: list[_Step] = []
    for name, child in seq._modules.items():
        if child is None:
            continue
        step = _module_step(child, _qualify(path, name), path)
        if steps:
            steps[-1].users = 1
            _link(step, steps[-1])
        steps.append(step)
    if steps:
        steps[-1].users = 1  # the Sequential's output
    return steps


def _attr_shape(node: Any, root: nn.Module) -> tuple | None:
    if isinstance(node, fx.Node) and node.op == "get_attr":
        value = root
        for part in node.target.split("."):
            value = getattr(value, part, None)
        return tuple(value.shape) if isinstance(value, Tensor) else None
    return None


def _graph_steps(graph: fx.Graph, root: nn.Module, owner: str) -> list[_Step]:
    steps: list[_Step] = []
    of_node: dict[fx.Node, _Step] = {}
    counters: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            step = _module_step(root.get_submodule(node.target), _qualify(owner, node.target), owner)
        elif node.op == "call_function" and node.target is fused_conv_call and len(node.args) > 1 and isinstance(
                node.args[1], fx.Node) and node.args[1].op == "get_attr":
            conv = root.get_submodule(node.args[1].target)
            step = _fused_step(_qualify(owner, node.args[1].target), owner, conv, node.kwargs)
        elif node.op == "call_function":
            step = _call_step(node.target, node.args, node.kwargs, owner, counters, lambda w: _attr_shape(w, root))
        elif node.op == "call_method":
            step = _Step("act" if node.target in POINTWISE_METHODS else "other", f"{owner}:{node.target}", owner)
        else:
            continue
        step.users = sum(1 for user in node.users if not (
            (user.op == "call_method" and user.target in _METADATA_METHODS)
            or (user.op == "call_function" and user.target is getattr and user.args[1:2] == ("shape",))))
        step.node = node
        first = node.args[0] if node.args else node.kwargs.get("input")
        _link(step, of_node.get(first) if isinstance(first, fx.Node) else None)
        of_node[node] = step
        steps.append(step)
    return steps


def mode_dependence(module: nn.Module) -> str:
    """Why ``module``'s own forward cannot be rewritten as one graph: ``""`` if its graph is the same in
    train and eval mode, with and without grad, else the reason (or the tracer's)."""
    codes = set()
    for training in (True, False):
        for grad in (True, False):
            traced = trace_or_reason(module, training, grad)
            if isinstance(traced, str):
                return traced
            codes.add(traced[0].python_code("self").src)
    return "" if len(codes) == 1 else "its forward depends on training or grad mode"


def _unless_mode_dependent(module: nn.Module, pairs: list[tuple[UpsamplingSite, _Step]]
                           ) -> list[tuple[UpsamplingSite, _Step]]:
    """Sites of a traced forward, marked unfusable (and calls unreplaceable) if the forward is not one graph."""
    if not any(site.fusable == "yes" or site.calls and site.replaceable for site, _ in pairs):
        return pairs
    reason = mode_dependence(module)
    if not reason:
        return pairs
    marked = []
    for site, step in pairs:
        changes: dict[str, Any] = {}
        if site.fusable == "yes":
            changes.update(fusable="no", note=f"{reason}, so it is not rewritten")
        if site.calls and site.replaceable:
            changes.update(replaceable=False, reason=f"{reason}, so it is not rewritten")
        marked.append((replace(site, **changes) if changes else site, step))
    return marked


def _static(model: nn.Module) -> tuple[list[tuple[UpsamplingSite, _Step]], list[tuple[str, str]]]:
    found: list[tuple[int, int, UpsamplingSite, _Step]] = []
    untraced: list[tuple[str, str]] = []
    order = {path: i for i, (path, _) in enumerate(model.named_modules())}

    def add(pairs: list[tuple[UpsamplingSite, _Step]], owner: str) -> None:
        for n, (site, step) in enumerate(pairs):
            found.append((order.get(site.path, order.get(owner, 0)), n, site, step))

    def visit(module: nn.Module, path: str) -> None:
        if isinstance(module, Upsampler) or _is_adapted_block(module):
            add(_sites([_module_step(module, path, path.rpartition(".")[0])], "modules"), path)
            return
        if isinstance(module, nn.ConvTranspose2d):
            add(_sites([_module_step(module, path, path.rpartition(".")[0])], "modules"), path)
            return
        plain_sequential = type(module).forward is nn.Sequential.forward and "forward" not in vars(module)
        if isinstance(module, nn.Sequential) and plain_sequential:
            add([p for p in _sites(_sequential_steps(module, path), "modules")
                 if p[0].kind not in ("transposed_conv",) and p[1].kind != "layer"], path)
        elif not _is_leaf(module) and not isinstance(module, (nn.ModuleList, nn.ModuleDict)):
            traced = trace_or_reason(module, module.training, torch.is_grad_enabled())
            if isinstance(traced, str):
                untraced.append((path, traced))
            else:
                graph, view = traced
                pairs = _sites(_graph_steps(graph, view, path), "forward")
                pairs = [p for p in pairs if not (p[1].is_module and p[1].kind in ("tconv", "layer"))]
                add(_unless_mode_dependent(module, pairs), path)
        for name, child in module._modules.items():
            if child is not None:
                visit(child, _qualify(path, name))

    visit(model, "")
    found.sort(key=lambda item: (item[0], item[1]))
    unique: dict[str, tuple[UpsamplingSite, _Step]] = {}
    for _, _, site, step in found:
        unique.setdefault(site.path, (site, step))
    return list(unique.values()), untraced


# ---- the run: hooks on every module, a TorchFunctionMode for every call


class _Recorder(TorchFunctionMode):
    """Steps of one forward: a step per leaf module call and per functional call outside leaves."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.paths: dict[int, str] = {}
        for path, module in model.named_modules():
            self.paths.setdefault(id(module), path)
        self.model = model
        self.steps: list[_Step] = []
        # id -> (weak reference, step): an id is only trusted while its tensor lives, so outputs that
        # no site needs are not kept alive (a run over a large model would hold every conv's output).
        self.produced: dict[int, tuple[weakref.ref, _Step]] = {}
        self.owners: list[tuple[str, dict[str, int]]] = [("", {})]
        self.inside = 0  # depth inside a leaf module
        self.handles: list[Any] = []

    def __enter__(self) -> _Recorder:
        self.patched: list[tuple[dict, str, Any]] = []
        for module in self.model.modules():
            self.handles.append(module.register_forward_pre_hook(self._pre, with_kwargs=True))
            # always_call: a forward that raises inside a try the model catches still pops its owner.
            self.handles.append(module.register_forward_hook(self._post, with_kwargs=True, always_call=True))
            # A forward rewritten by fuse_resize_conv calls the fused functions from its own globals: seen
            # through a wrapper, each call is one site (its inner calls are the fused layer's own).
            namespace = getattr(getattr(vars(module).get("forward"), "__func__", None), "__globals__", None)
            for key, value in (namespace or {}).items():
                if value is fused_conv_call or value is resize_conv2d:
                    self.patched.append((namespace, key, value))
        for namespace, key, value in self.patched:
            namespace[key] = self._fused(value)
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        for handle in self.handles:
            handle.remove()
        for namespace, key, value in self.patched:
            namespace[key] = value
        super().__exit__(*exc)

    def _fused(self, function: Callable) -> Callable:
        def record(x: Any, held: Any, *args: Any, **kwargs: Any) -> Any:
            if self.inside:
                return function(x, held, *args, **kwargs)
            self._uses(x)
            self.inside += 1
            try:
                output = function(x, held, *args, **kwargs)
            finally:
                self.inside -= 1
            owner, counters = self.owners[-1]
            if isinstance(held, nn.Module):
                step = _fused_step(self.paths.get(id(held), "?"), owner, held, kwargs)
            else:
                step = _call_step(resize_conv2d, (x, held, *args), kwargs, owner, counters,
                                  lambda w: tuple(w.shape) if isinstance(w, Tensor) else None)
            self._track(step, x, output)
            return output

        return record

    def _uses(self, *values: Any) -> None:
        for value in tree_flatten(values)[0]:
            step = self._producer(value)
            if step is not None:
                step.users += 1

    def _producer(self, value: Any) -> _Step | None:
        entry = self.produced.get(id(value)) if isinstance(value, Tensor) else None
        return entry[1] if entry is not None and entry[0]() is value else None

    def _track(self, step: _Step, first: Any, output: Any) -> None:
        _link(step, self._producer(first))
        if isinstance(first, Tensor):
            step.input_shape = tuple(first.shape)
        if step.kind == "resize" and isinstance(first, Tensor) and isinstance(output, Tensor) and first.dim() == 4 == (
                output.dim()) and all(i > 0 for i in first.shape[-2:]):
            factors = {o / i for i, o in zip(first.shape[-2:], output.shape[-2:])}
            factor = factors.pop() if len(factors) == 1 else None
            step.observed_scale = int(factor) if factor is not None and factor == int(factor) and factor >= 2 else None
        if isinstance(output, Tensor):
            self.produced[id(output)] = (weakref.ref(output), step)
            # Kept: what can end a site (a conv only after a resize, as a pixel shuffle's conv is not its end).
            if step.kind in ("resize", "shuffle", "tconv", "layer", "fused") or (
                    step.kind == "conv" and step.source is not None and step.source.kind in ("resize", "act", "pad")):
                step.output = output
        self.steps.append(step)

    def _pre(self, module: nn.Module, args: tuple, kwargs: dict | None = None) -> None:
        if kwargs is None:
            return  # called directly (a fused layer running a conv's weight hooks), not a module call
        if self.inside:
            self.inside += 1
        elif _is_leaf(module):
            self.inside = 1
            self._uses(args, kwargs)
        else:
            self.owners.append((self.paths.get(id(module), "?"), {}))

    def _post(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if self.inside > 1:
            self.inside -= 1
        elif self.inside == 1:
            self.inside = 0
            path = self.paths.get(id(module), "?")
            step = _module_step(module, path, self.owners[-1][0])
            self._track(step, args[0] if args else next(iter(kwargs.values()), None), output)
        elif len(self.owners) > 1:
            self.owners.pop()

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        output = func(*args, **kwargs)
        if self.inside or not isinstance(output, Tensor):
            return output  # inside a leaf, or metadata (size, shape, dim): not a use of the values
        self._uses(args, kwargs)
        owner, counters = self.owners[-1]
        step = _call_step(func, args, kwargs, owner, counters,
                          lambda w: tuple(w.shape) if isinstance(w, Tensor) else None)
        first = args[0] if args else kwargs.get("input")
        if step.kind in ("resize", "conv", "tconv", "shuffle") or (
                step.kind in ("act", "pad") and self._producer(first) is not None):
            self._track(step, first, output)
        return output


def _restore_buffers(model: nn.Module) -> Callable[[], None]:
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}

    def restore() -> None:
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                if name in buffers:
                    buffer.copy_(buffers[name])

    return restore


def _run(model: nn.Module, args: Sequence, kwargs: Mapping) -> list[tuple[UpsamplingSite, _Step]]:
    # A forward in train mode updates BatchNorm statistics; the search puts every buffer back.
    restore = _restore_buffers(model)
    try:
        with torch.no_grad(), _Recorder(model) as recorder:
            model(*args, **kwargs)
    finally:
        restore()
    unique: dict[str, tuple[UpsamplingSite, _Step]] = {}
    for site, step in _sites(recorder.steps, "execution"):
        unique.setdefault(site.path, (site, step))
    return list(unique.values())


def _merge(ran: UpsamplingSite, static: UpsamplingSite | None, untraced: Mapping[str, str]) -> UpsamplingSite:
    """A site seen in the run, with what the static search knows of it (how it can be rewritten)."""
    if static is not None:
        replaceable, reason = ran.replaceable, ran.reason
        if ran.calls and ran.replaceable and not static.replaceable:  # its forward cannot be rewritten
            replaceable, reason = False, static.reason
        return replace(ran, found=static.found, fusable=static.fusable, note=static.note,
                       replaceable=replaceable, reason=reason,
                       in_channels=ran.in_channels if ran.in_channels is not None else static.in_channels,
                       out_channels=ran.out_channels if ran.out_channels is not None else static.out_channels)
    # Only the run saw it: a call in a forward that cannot be traced, or a chain across modules.
    blocked = untraced.get(ran.owner)
    changes: dict[str, Any] = {}
    if ran.fusable == "yes":
        changes["fusable"] = "no"
        changes["note"] = (f"the forward of {_owner(ran.owner)} cannot be rewritten: {blocked}" if blocked else
                           "its pieces are in different modules' forwards, which are rewritten one at a time")
    if ran.calls and ran.replaceable:
        changes["replaceable"] = False
        changes["reason"] = (f"its {', '.join(c.partition(':')[2] for c in ran.calls)} call(s) are in the forward "
                             f"of {_owner(ran.owner)}, which cannot be rewritten: {blocked}" if blocked else
                             "its calls could not be found in a traced forward")
    return replace(ran, **changes) if changes else ran


def _site_conv(model: nn.Module, site: UpsamplingSite) -> nn.Module | None:
    """The convolution module of a ``resize_conv`` site (a diffusers block's ``conv``), if it is one."""
    module = dict(model.named_modules()).get(site.path) if site.kind == "resize_conv" else None
    if module is not None and is_diffusers_upsample2d(module):
        return upsample2d_conv(module)
    return None if isinstance(module, Upsampler) else module


def _with_conv_refusals(model: nn.Module, sites: Sequence[UpsamplingSite]) -> tuple[UpsamplingSite, ...]:
    """Sites whose convolution ``fuse_resize_conv`` would refuse (hooks, a wrapper) marked unfusable, with why."""
    marked = []
    for site in sites:
        conv = _site_conv(model, site) if site.fusable == "yes" else None
        reason = conv_refusal(conv) if conv is not None else None
        marked.append(replace(site, fusable="no", note=reason) if reason else site)
    return tuple(marked)


def search_upsampling_sites(model: nn.Module, args: Sequence[Any] | None = None,
                            kwargs: Mapping[str, Any] | None = None) -> SiteSearch:
    """Every upsampling site of ``model``, the modules that could not be traced and, with inputs, the outputs.

    Args:
        model: any ``nn.Module``.
        args: positional inputs of one forward; ``None`` (the default) for the static search only.
        kwargs: keyword inputs of that forward.

    Returns:
        A :class:`SiteSearch`.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    static, untraced = _static(model)
    if args is None and not kwargs:
        return SiteSearch(_with_conv_refusals(model, [site for site, _ in static]), tuple(untraced))
    by_path = {site.path: site for site, _ in static}
    blocked = dict(untraced)
    ran = _run(model, tuple(args or ()), dict(kwargs or {}))
    sites = [_merge(site, by_path.get(site.path), blocked) for site, _ in ran]
    # A static site whose pieces the run put in another site (a chain across modules) is that site.
    seen = {name for site in sites for name in (site.path, *site.modules, *site.calls)}
    sites += [site for site, _ in static if seen.isdisjoint((site.path, *site.modules, *site.calls))]
    outputs = {site.path: step.output for site, step in ran if step.output is not None}
    return SiteSearch(_with_conv_refusals(model, sites), tuple(untraced), outputs)


def find_upsampling_sites(model: nn.Module, *example_args: Any, **example_kwargs: Any) -> list[UpsamplingSite]:
    """Every upsampling site of ``model``: statically, or on its execution when inputs are given.

    Without inputs, the modules, ``nn.Sequential`` children and traced ``forward`` methods are searched
    (module order). With inputs, ``model(*example_args, **example_kwargs)`` runs once without grad (buffers
    restored afterwards) and every site it runs is listed in execution order, then those it did not run.

    Example:
        >>> model = nn.Sequential(nn.ConvTranspose2d(8, 4, 4, 2, 1), nn.Upsample(scale_factor=2),
        ...                       nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 12, 3, padding=1), nn.PixelShuffle(2))
        >>> [(s.path, s.kind, s.stride, s.fusable) for s in find_upsampling_sites(model)]
        [('0', 'transposed_conv', 2, 'no'), ('2', 'resize_conv', 2, 'yes'), ('3', 'pixel_shuffle', 2, 'no')]
    """
    args = example_args if example_args or example_kwargs else None
    return list(search_upsampling_sites(model, args, example_kwargs).sites)
