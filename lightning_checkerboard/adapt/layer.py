"""The layer a fused resize-convolution becomes, and how a fused site reads its convolution.

A fused site computes with the convolution's *effective* weight: what ``conv.weight`` is when the conv
runs. For ``torch.nn.utils.parametrize`` (``parametrizations.weight_norm``, ``spectral_norm``, a LoRA
written as a parametrization) that is the parametrized tensor, recomputed on every read; for the older
hook-based ``weight_norm``, ``spectral_norm`` and ``prune`` it is recomputed by the conv's forward
pre-hook, which the fused site runs first. A convolution whose call does more than ``conv.weight`` and
``conv.bias`` say — forward or backward hooks, other pre-hooks, a forward of its own, an adapter that
wraps it (``base_layer``) — is not fused: :func:`conv_refusal` says why.

:class:`FusedResizeConv2d` takes a convolution's place in an ``nn.Sequential``. It shares that conv's
parameter, buffer and child tables, so its state-dict keys (``weight``, ``bias``, or
``parametrizations.weight.original`` ...) are the conv's, and it keeps the conv itself, out of the
module tree, to read the effective weight from.

Per site, :func:`resize_conv2d` runs the weight-tied transposed convolution where it costs less than
resizing and convolving, and the plain path elsewhere (:func:`fused_is_faster`).
"""

from __future__ import annotations

import logging
import pickle
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.prune import BasePruningMethod
from torch.nn.utils.spectral_norm import SpectralNorm
from torch.nn.utils.weight_norm import WeightNorm

from lightning_checkerboard.functional.resize_conv import bilinear_conv2d, nearest_conv2d, resize_conv2d_reference
from lightning_checkerboard.upsamplers.layers import Upsampler, check_resize_options

__all__ = [
    "FusedResizeConv2d",
    "conv_refusal",
    "fused_conv_call",
    "fused_is_faster",
    "mark_unpicklable",
    "resize_conv2d",
]

log = logging.getLogger("lightning_checkerboard.adapt.fuse")
_PACKAGE_DIR = str(Path(__file__).parent.parent)  # as frames name their files

# Forward pre-hooks that only recompute the conv's weight from its parameters: a fused site runs them.
_WEIGHT_PRE_HOOKS = (WeightNorm, SpectralNorm, BasePruningMethod)

SAVE_ADVICE = ("save its state_dict() instead, and after loading that into the original model, call "
               "fuse_resize_conv again")


def _save_advice(rewritten_by: str) -> str:
    if rewritten_by == "fuse_resize_conv":
        return SAVE_ADVICE
    return (f"save its state_dict() instead, and load that into the original model after calling {rewritten_by} "
            f"on it again")

# Where the tied transposed convolution beats resize → conv on CPU (see fused_is_faster): input pixels
# and the smaller channel count, without and with autograd recording.
_FUSED_FROM = {False: (16 * 16, 128), True: (32 * 32, 256)}


def fused_is_faster(mode: str, scale: int, height: int, width: int, in_channels: int, out_channels: int,
                    *, grad: bool = False) -> bool:
    """Whether the weight-tied transposed convolution is the cheaper path for one input shape.

    A deterministic cost rule, the same on every run. Nearest ×``s`` fused does ``(s + 2)²`` instead of
    ``9 s²`` multiplies per input pixel and channel pair (16 instead of 36 at ×2), but a transposed
    convolution runs at a lower rate than a plain one on small maps and few channels, and with
    autograd recording (``grad``) its kernel is rebuilt at every call and its backward is slower. As
    measured on CPU, the tied path is taken from 16×16 input pixels and 128 channels up without
    ``grad``, and from 32×32 pixels and 256 channels with it; below that the plain path. Bilinear ×2
    fused does as many multiplies as the plain path (6×6 taps against 4 × 3×3) plus a border
    correction, so the plain path is always taken.

    Example:
        >>> fused_is_faster("nearest", 2, 16, 16, 512, 512), fused_is_faster("nearest", 2, 8, 8, 512, 512)
        (True, False)
        >>> fused_is_faster("nearest", 2, 16, 16, 512, 512, grad=True)
        False
        >>> fused_is_faster("bilinear", 2, 64, 64, 256, 256)
        False
    """
    if mode != "nearest":
        return False
    pixels, channels = _FUSED_FROM[bool(grad)]
    return height * width >= pixels and min(in_channels, out_channels) >= channels


def resize_conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, *, mode: str, scale: int, padding: str) -> Tensor:
    """Resize by ``scale`` (``mode`` nearest or bilinear), pad one pixel, 3×3 conv: a fused site's computation.

    Runs the weight-tied transposed convolution where :func:`fused_is_faster` says it is cheaper for
    this input, else resize → pad → conv; both give the same values and gradients to float round-off.

    Example:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> x, w = torch.randn(1, 2, 4, 4), torch.randn(3, 2, 3, 3)
        >>> plain = F.conv2d(F.interpolate(x, scale_factor=2), w, padding=1)
        >>> torch.allclose(resize_conv2d(x, w, None, mode="nearest", scale=2, padding="zeros"), plain, atol=1e-5)
        True
    """
    if not (mode == "nearest" or (mode == "bilinear" and scale == 2)):
        raise ValueError(
            f"mode and scale must be 'nearest' (any scale) or 'bilinear' (scale 2); got {mode!r}, {scale!r}.")
    grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    if x.dim() != 4 or not fused_is_faster(mode, scale, x.shape[-2], x.shape[-1], weight.shape[1], weight.shape[0],
                                           grad=grad):
        return resize_conv2d_reference(x, weight, bias, mode=mode, scale=scale, padding=padding)
    if mode == "nearest":
        return nearest_conv2d(x, weight, bias, scale=scale, padding=padding)
    return bilinear_conv2d(x, weight, bias, padding=padding)


def conv_refusal(conv: nn.Module) -> str | None:
    """Why a site's convolution cannot run fused, or ``None`` when its weight and bias say all it does.

    Example:
        >>> conv = nn.Conv2d(2, 2, 3, padding=1)
        >>> print(conv_refusal(conv))
        None
        >>> _ = conv.register_forward_hook(lambda module, args, output: None)
        >>> conv_refusal(conv)
        'it has forward hooks, which would see the low-resolution input'
    """
    if isinstance(getattr(conv, "base_layer", None), nn.Module):
        return (f"it is a {type(conv).__name__} wrapping its convolution (base_layer), an adapter whose own path "
                "the fused layer would drop")
    if not isinstance(conv, nn.Conv2d):
        return f"it is a {type(conv).__name__}, not an nn.Conv2d"
    if type(conv).forward is not nn.Conv2d.forward or "forward" in vars(conv):
        return f"its forward ({type(conv).__name__}) is not nn.Conv2d's"
    if conv._forward_hooks:
        return "it has forward hooks, which would see the low-resolution input"
    if conv._backward_hooks or conv._backward_pre_hooks:
        return "it has backward hooks, which would see the fused layer's gradients"
    others = [hook for key, hook in conv._forward_pre_hooks.items()
              if not isinstance(hook, _WEIGHT_PRE_HOOKS) or key in conv._forward_pre_hooks_with_kwargs]
    if others:
        return ("it has forward pre-hooks other than weight_norm, spectral_norm and pruning "
                f"({', '.join(type(hook).__name__ for hook in others)})")
    return None


def refuse(where: str, reason: str) -> None:
    """Log and warn that the site at ``where`` is left unfused, and why (the warning points at the caller)."""
    message = f"fuse_resize_conv left {where or '<root>'} unfused: {reason}."
    log.info(message)
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)


def _run_weight_hooks(conv: nn.Module, x: Tensor) -> None:
    # The hook-based weight_norm / spectral_norm / prune write conv.weight from their parameters
    # (spectral_norm's power iteration runs in training mode only, as when the conv runs).
    for hook in conv._forward_pre_hooks.values():
        hook(conv, (x,))


def fused_conv_call(x: Tensor, conv: nn.Module, *, mode: str, scale: int, padding: str) -> Tensor:
    """``conv(pad(resize(x)))``, fused while :func:`conv_refusal` accepts ``conv``.

    Reads the conv's effective weight and bias as it would when called (its weight pre-hooks run first).
    This is what a rewritten ``forward`` calls in place of its resize → pad → conv chain. The conv is
    checked at every call (a few attribute reads), so a hook registered on it or an adapter put in its
    place after fusing (a LoRA layer wrapping it) is honoured: that call resizes, pads and calls the
    module itself.
    """
    if conv_refusal(conv) is not None:
        if mode == "nearest":
            up = F.interpolate(x, scale_factor=scale, mode="nearest")
        else:
            up = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
        base = getattr(conv, "base_layer", conv)
        if tuple(getattr(base, "padding", (1, 1))) == (0, 0):  # the pad was a step of its own
            up = F.pad(up, (1, 1, 1, 1), mode="reflect" if padding == "reflect" else "constant")
        return conv(up)
    _run_weight_hooks(conv, x)
    return resize_conv2d(x, conv.weight, conv.bias, mode=mode, scale=scale, padding=padding)


class _Unpicklable:
    """An attribute of a module whose ``forward`` was rewritten: pickling it stops with advice."""

    def __init__(self, owner: str, rewritten_by: str) -> None:
        self.owner = owner
        self.rewritten_by = rewritten_by

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise pickle.PicklingError(
            f"{self.owner} runs a forward rewritten by {self.rewritten_by}, which pickling does not keep; "
            f"{_save_advice(self.rewritten_by)}.")

    def __deepcopy__(self, memo: dict) -> _Unpicklable:
        return self


def mark_unpicklable(module: nn.Module, rewritten_by: str = "fuse_resize_conv") -> None:
    """Make pickling ``module`` (``torch.save`` of it or of a model holding it) fail with save advice.

    Called on every module whose ``forward`` is rewritten on the instance (by ``rewritten_by``): the
    rewrite cannot be pickled faithfully (a reloaded module would run its class's original forward).
    """
    vars(module)["_fused_forward_not_picklable"] = _Unpicklable(type(module).__name__, rewritten_by)


# The conv's tables that make up its state: shared, so the fused layer has the conv's keys and tensors.
_SHARED_TABLES = ("_parameters", "_buffers", "_non_persistent_buffers_set", "_modules", "_state_dict_hooks",
                  "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")


class FusedResizeConv2d(Upsampler):
    """Resize then a 3×3 convolution, computed as one weight-tied transposed convolution.

    Stands in for the ``nn.Conv2d(in_channels, out_channels, 3)`` it replaces: its parameters, buffers
    and parametrizations are that conv's, under the same names, so a checkpoint of the original model
    loads into the converted one and back. ``weight`` is the conv's effective weight (parametrized or
    recomputed by the conv's weight-norm, spectral-norm or pruning hook), read on every call, and a
    parametrization registered on this layer's ``weight`` afterwards takes effect too. Built by
    :func:`~lightning_checkerboard.adapt.fuse_resize_conv`; :meth:`from_conv` makes one from a
    convolution, sharing its parameters. Where the tied path is not the cheaper one for an input
    (:func:`fused_is_faster`), the layer resizes and convolves.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        mode: ``"nearest"`` or ``"bilinear"`` (``align_corners=False``; scale 2 only).
        scale: the resize factor.
        padding: ``"zeros"`` or ``"reflect"``: the one-pixel padding of the resized image.
        bias: add a learnable bias.

    Shape:
        - Input: ``(B, in_channels, H, W)``.
        - Output: ``(B, out_channels, scale*H, scale*W)``.

    Example:
        >>> import torch
        >>> conv = nn.Conv2d(4, 2, 3, padding=1)
        >>> plain = nn.Sequential(nn.Upsample(scale_factor=2), conv)
        >>> fused = FusedResizeConv2d.from_conv(conv, mode="nearest", scale=2, padding="zeros")
        >>> x = torch.randn(1, 4, 5, 5)
        >>> torch.allclose(fused(x), plain(x), atol=1e-5)
        True
        >>> sorted(fused.state_dict()) == sorted(conv.state_dict())
        True
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        mode: str = "nearest",
        scale: int = 2,
        padding: str = "zeros",
        bias: bool = True,
    ) -> None:
        self._setup(in_channels, out_channels, mode, scale, padding)
        # Same initialisation and names as the nn.Conv2d this stands in for.
        self._adopt(nn.Conv2d(in_channels, out_channels, 3, bias=bias))

    def _setup(self, in_channels: int, out_channels: int, mode: str, scale: int, padding: str) -> None:
        super().__init__(in_channels, out_channels, scale=scale)
        check_resize_options(mode, padding)
        if mode == "bilinear" and self.scale != 2:
            raise ValueError(f"the fused bilinear path is for scale=2; got scale={self.scale}.")
        self.mode, self.padding = mode, padding

    def _adopt(self, conv: nn.Conv2d) -> None:
        for table in _SHARED_TABLES:
            if table in vars(conv):  # every table this torch has
                vars(self)[table] = vars(conv)[table]
        vars(self)["_conv"] = conv  # not a child: its tensors are already this layer's

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, *, mode: str, scale: int, padding: str) -> FusedResizeConv2d:
        """The fused layer of ``resize → pad → conv``, sharing ``conv``'s parameters and parametrizations.

        Raises:
            ValueError: if ``conv`` cannot run fused (:func:`conv_refusal` says why).
        """
        reason = conv_refusal(conv)
        if reason is not None:
            raise ValueError(f"conv cannot run fused: {reason}.")
        fused = cls.__new__(cls)  # no fresh conv to initialise and discard: conv's tensors are taken
        fused._setup(conv.in_channels, conv.out_channels, mode, scale, padding)
        fused._adopt(conv)
        fused.train(conv.training)
        return fused

    @property
    def weight(self) -> Tensor:
        """The convolution's effective ``(out_channels, in_channels, 3, 3)`` weight."""
        return self._conv.weight

    @property
    def bias(self) -> Tensor | None:
        """The convolution's effective bias (``None`` without one)."""
        return self._conv.bias

    def forward(self, x: Tensor) -> Tensor:
        conv = self._conv
        if conv._forward_pre_hooks:
            conv.training = self.training
            _run_weight_hooks(conv, x)
        return resize_conv2d(x, self.weight, self.bias, mode=self.mode, scale=self.scale, padding=self.padding)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mode={self.mode!r}, padding={self.padding!r}, bias={self.bias is not None}"
