"""Recognising the pieces of an upsampling site: a resize, a one-pixel pad, a convolution.

Each piece can be written as a module (``nn.Upsample``, ``nn.ReflectionPad2d``, ``nn.Conv2d``) or as a
call (``F.interpolate``, ``F.pad``, ``F.conv2d``); both spellings are read into the same small records
here, so the module walk and the ``torch.fx`` rewrite apply one rule of what can be fused exactly.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "POINTWISE_FUNCTIONS",
    "POINTWISE_METHODS",
    "Resize",
    "bind_call",
    "bind_conv2d",
    "conv_call_padding",
    "conv_padding",
    "fusable_padding",
    "is_pointwise_module",
    "pad_of_call",
    "pad_of_module",
    "resize_of_call",
    "resize_of_module",
]


@dataclass(frozen=True)
class Resize:
    """An integer-factor resize: ``mode`` is ``"nearest"`` or ``"bilinear"`` (``align_corners=False``)."""

    mode: str
    scale: int


def _integer_scale(scale_factor: object) -> int | None:
    """The common integer factor of a ``scale_factor`` (a number or one per axis), else ``None``."""
    factors = list(scale_factor) if isinstance(scale_factor, (tuple, list)) else [scale_factor]
    if not factors or isinstance(factors[0], bool) or not isinstance(factors[0], (int, float)):
        return None
    if not math.isfinite(factors[0]):
        return None
    if any(f != factors[0] for f in factors) or float(factors[0]) != int(factors[0]) or factors[0] < 2:
        return None
    return int(factors[0])


def _resize(size: object, scale_factor: object, mode: object, align_corners: object, antialias: object = False
            ) -> Resize | None:
    if size is not None or scale_factor is None or antialias:
        return None
    scale = _integer_scale(scale_factor)
    if scale is None:
        return None
    # At an integer factor, "nearest-exact" picks the same source pixel as "nearest".
    if mode in ("nearest", "nearest-exact"):
        return Resize("nearest", scale)
    if mode == "bilinear" and not align_corners:
        return Resize("bilinear", scale)
    return None


def resize_of_module(module: nn.Module) -> Resize | None:
    """The resize an ``nn.Upsample`` (or subclass with its forward) applies, if it is an integer one."""
    if not isinstance(module, nn.Upsample) or type(module).forward is not nn.Upsample.forward:
        return None
    return _resize(module.size, module.scale_factor, module.mode, module.align_corners)


_INTERPOLATE = inspect.signature(F.interpolate)
_PAD = inspect.signature(F.pad)
# torch.conv2d is a builtin with two schemas, so its signature is written out once here.
_CONV2D = inspect.Signature(
    [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)
     for name, default in (("input", inspect.Parameter.empty), ("weight", inspect.Parameter.empty),
                           ("bias", None), ("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1))]
)


def bind_call(signature: inspect.Signature, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """Arguments of a call by parameter name, defaults filled in; ``None`` if they do not bind."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    return dict(bound.arguments)


def resize_of_call(args: Sequence[Any], kwargs: Mapping[str, Any]) -> Resize | None:
    """The resize an ``F.interpolate(*args, **kwargs)`` call applies, if it is an integer one."""
    call = bind_call(_INTERPOLATE, args, kwargs)
    if call is None:
        return None
    return _resize(call["size"], call["scale_factor"], call["mode"], call["align_corners"], call["antialias"])


def _one_pixel(padding: object) -> bool:
    values = list(padding) if isinstance(padding, (tuple, list)) else [padding]
    return len(values) in (1, 2, 4) and all(v == 1 and not isinstance(v, bool) for v in values)


def pad_of_module(module: nn.Module) -> str | None:
    """``"zeros"``, ``"reflect"`` or ``"replicate"`` for a one-pixel 2-D padding module, else ``None``."""
    if isinstance(module, nn.ReflectionPad2d) and _one_pixel(module.padding):
        return "reflect"
    if isinstance(module, nn.ReplicationPad2d) and _one_pixel(module.padding):
        return "replicate"
    if isinstance(module, nn.ConstantPad2d) and _one_pixel(module.padding) and module.value == 0:
        return "zeros"  # nn.ZeroPad2d is a ConstantPad2d of value 0
    return None


def pad_of_call(args: Sequence[Any], kwargs: Mapping[str, Any]) -> str | None:
    """The padding kind of an ``F.pad(*args, **kwargs)`` call by one pixel on all four sides."""
    call = bind_call(_PAD, args, kwargs)
    if call is None or not isinstance(call["pad"], (tuple, list)) or len(call["pad"]) != 4:
        return None
    if not _one_pixel(call["pad"]):
        return None
    if call["mode"] == "constant":
        return "zeros" if not call["value"] else None
    return call["mode"] if call["mode"] in ("reflect", "replicate") else None


def _conv_padding(kernel: object, stride: object, dilation: object, groups: object, padding: object,
                  padding_mode: str) -> str | None:
    def pair(v: object) -> tuple:
        return tuple(v) if isinstance(v, (tuple, list)) else (v, v)

    if pair(kernel) != (3, 3) or pair(stride) != (1, 1) or pair(dilation) != (1, 1) or groups != 1:
        return None
    if padding in ("valid",) or pair(padding) == (0, 0):
        return "none"
    if padding == "same" or pair(padding) == (1, 1):
        return {"zeros": "zeros", "reflect": "reflect", "replicate": "replicate"}.get(padding_mode)
    return None


def conv_padding(module: nn.Module) -> str | None:
    """For a plain 3×3, stride-1 ``nn.Conv2d``: ``"none"`` if unpadded, else its one-pixel padding kind.

    ``None`` when the module is not such a convolution (another kernel, stride, dilation, groups or
    padding, or a subclass with a forward of its own).
    """
    if type(module) is not nn.Conv2d and (not isinstance(module, nn.Conv2d)
                                          or type(module).forward is not nn.Conv2d.forward):
        return None
    return _conv_padding(module.kernel_size, module.stride, module.dilation, module.groups, module.padding,
                         module.padding_mode)


def bind_conv2d(args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The arguments of an ``F.conv2d(*args, **kwargs)`` call by name (``input``, ``weight``, ...)."""
    return bind_call(_CONV2D, args, kwargs)


def conv_call_padding(call: Mapping[str, Any], weight_shape: tuple[int, ...] | None) -> str | None:
    """:func:`conv_padding` for a bound ``F.conv2d`` call (:func:`bind_conv2d`) of a weight of ``weight_shape``."""
    if weight_shape is None or len(weight_shape) != 4:
        return None
    return _conv_padding(tuple(weight_shape[-2:]), call["stride"], call["dilation"], call["groups"],
                         call["padding"], "zeros")


def fusable_padding(resize: Resize, pad: str | None, conv: str | None) -> str | None:
    """The fused layer's ``padding`` for resize → (pad) → 3×3 conv, or ``None`` if not exactly fusable.

    The one-pixel padding comes from the pad (then the conv must be unpadded) or from the conv itself.
    Replicate padding of a nearest-resized image equals reflect padding (the border pixel and its
    neighbour are copies of one input pixel), so it fuses as ``"reflect"``; after bilinear it does not.

    Example:
        >>> fusable_padding(Resize("nearest", 2), "replicate", "none")
        'reflect'
        >>> fusable_padding(Resize("bilinear", 2), None, "zeros")
        'zeros'
        >>> print(fusable_padding(Resize("bilinear", 3), None, "zeros"))  # fused bilinear is for ×2
        None
    """
    if conv is None or (resize.mode == "bilinear" and resize.scale != 2):
        return None
    if pad is not None:
        if conv != "none":
            return None
        padding = pad
    else:
        padding = conv
    if padding == "replicate":
        return "reflect" if resize.mode == "nearest" else None
    return padding if padding in ("zeros", "reflect") else None


# Activations that act on each value alone (PReLU: one slope per channel, still per value). Each commutes
# with a nearest resize, which only copies values: act(nearest(x)) == nearest(act(x)).
_POINTWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Mish, nn.ELU, nn.CELU, nn.SELU, nn.Tanh,
                      nn.Sigmoid, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.PReLU, nn.Softplus)
#: Pointwise activation functions, as ``torch.fx`` targets and as a ``TorchFunctionMode`` sees them.
POINTWISE_FUNCTIONS = frozenset({
    F.relu, F.relu_, torch.relu, torch.relu_, F.relu6, F.leaky_relu, F.leaky_relu_, F.gelu, F.silu, F.mish,
    F.elu, F.celu, F.selu, F.hardswish, F.hardsigmoid, F.hardtanh, F.softplus, F.sigmoid, F.tanh, torch.sigmoid,
    torch.tanh, Tensor.relu, Tensor.relu_, Tensor.sigmoid, Tensor.sigmoid_, Tensor.tanh, Tensor.tanh_,
})
#: The same as tensor methods (``x.relu()``), by name.
POINTWISE_METHODS = frozenset({"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_"})


def is_pointwise_module(module: nn.Module) -> bool:
    """Whether ``module`` is one of torch's pointwise activations, with torch's own forward."""
    return (isinstance(module, _POINTWISE_MODULES) and "forward" not in vars(module)
            and getattr(type(module).forward, "__module__", "").startswith("torch.nn"))
