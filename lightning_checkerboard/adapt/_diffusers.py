"""Adapters for diffusers' upsampling blocks, looked up by class name so diffusers stays optional.

diffusers' ``Upsample2D`` (the up blocks of ``AutoencoderKL`` decoders and of ``UNet2DModel``) chooses
its computation from constructor flags and call arguments, so it cannot be traced as one graph. Its
common configuration (``use_conv=True``, ``interpolate=True``, no norm, a 3×3 conv padded by one) is
nearest ×2 then that conv; its ``forward`` is replaced by the fused computation for calls without an
``output_size`` (or with exactly twice the input size) and falls back to the original otherwise. The
fused computation reads the conv's effective weight (parametrizations, weight-norm hooks); a conv with
other hooks or wrapped by an adapter (a LoRA layer's ``base_layer``) is left unfused, with the reason.
"""

from __future__ import annotations

import types
from typing import Any

from torch import Tensor, nn

from lightning_checkerboard.adapt.layer import conv_refusal, fused_conv_call, mark_unpicklable, refuse
from lightning_checkerboard.adapt.patterns import Resize, conv_padding, fusable_padding

__all__ = ["fuse_adapted", "is_diffusers_upsample2d", "upsample2d_conv"]


def is_diffusers_upsample2d(module: nn.Module) -> bool:
    """Whether ``module`` is diffusers' ``Upsample2D`` (by class name and home package)."""
    cls = type(module)
    return cls.__name__ == "Upsample2D" and cls.__module__.split(".")[0] == "diffusers"


def upsample2d_conv(module: nn.Module) -> nn.Module | None:
    """The convolution an ``Upsample2D`` applies (``conv`` or, under its legacy name, ``Conv2d_0``)."""
    return getattr(module, "conv" if getattr(module, "name", "conv") == "conv" else "Conv2d_0", None)


def upsample2d_padding(module: nn.Module) -> str | None:
    """The fused ``padding`` of an ``Upsample2D`` in its nearest-then-conv configuration, else ``None``."""
    conv = upsample2d_conv(module)
    return _padding_of(module, conv) if conv is not None else None


def _padding_of(module: nn.Module, conv: nn.Module) -> str | None:
    if (getattr(module, "use_conv_transpose", True) or not getattr(module, "use_conv", False)
            or not getattr(module, "interpolate", False) or getattr(module, "norm", None) is not None):
        return None
    return fusable_padding(Resize("nearest", 2), None, conv_padding(conv))


def _fused_upsample2d_forward(
    self: nn.Module, hidden_states: Tensor, output_size: Any = None, *args: Any, **kwargs: Any
) -> Tensor:
    doubled = (2 * hidden_states.shape[-2], 2 * hidden_states.shape[-1])
    if args or kwargs or (output_size is not None and tuple(output_size) != doubled):
        return type(self).forward(self, hidden_states, output_size, *args, **kwargs)
    return fused_conv_call(hidden_states, upsample2d_conv(self), mode="nearest", scale=2,
                           padding=self._fused_padding)


def fuse_adapted(module: nn.Module, path: str = "") -> tuple[str, Resize, str] | None:
    """Fuse a third-party block in place, if an adapter knows it; ``(kind, resize, padding)`` or ``None``.

    A block the adapter would fuse but for its convolution (hooks, a wrapper such as a LoRA layer) is
    left as it is, with a warning that says why (``path`` names it there).
    """
    if not is_diffusers_upsample2d(module):
        return None
    conv = upsample2d_conv(module)
    if conv is None:
        return None
    # An adapter wrapping the conv (base_layer) hides a conv that would otherwise fuse: say why not.
    padding = _padding_of(module, getattr(conv, "base_layer", conv))
    if padding is None:
        return None
    reason = conv_refusal(conv)
    if reason is not None:
        refuse(f"{path}.{'conv' if conv is getattr(module, 'conv', None) else 'Conv2d_0'}".lstrip("."), reason)
        return None
    module._fused_padding = padding
    mark_unpicklable(module)
    module.forward = types.MethodType(_fused_upsample2d_forward, module)
    return "diffusers.Upsample2D", Resize("nearest", 2), padding
