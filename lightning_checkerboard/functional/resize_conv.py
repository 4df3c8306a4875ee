"""Resize-then-convolve, computed as a weight-tied transposed convolution.

Resizing by an integer factor ``s`` is itself a transposed convolution: nearest is zero insertion
followed by an ``s``-tap box, bilinear (``align_corners=False``) a ``2s``-tap triangle over the
edge-replicated input. A following ``k×k`` convolution composes with it into one transposed
convolution whose kernel is a fixed linear map of the ``k×k`` weight, ``K = M w Mᵀ`` per channel
pair. Computing that instead of "resize, then conv" skips the ``s²``-sized intermediate and, for
nearest, does 16 instead of 36 multiplies per input pixel — while the learnable parameter stays
the small ``w`` and autograd folds gradients back through ``M``.

Only the ``3×3`` convolution of the article is fused here; every function also has a reference
path (:func:`resize_conv2d_reference`) that the tests hold the fused one to.

Building ``K`` costs one pass over ``C_in·C_out·L²`` numbers, as much as the convolution itself on a
small map. When no gradient is recorded (inference), the kernel of a parameter is therefore kept and
reused until the parameter changes (its version counter: every in-place write); in training it is
rebuilt at each call, so gradients and optimiser steps are always seen.
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_checkerboard._validation import check_choice

__all__ = [
    "PADDING_MODES",
    "RESIZE_MODES",
    "bilinear_conv2d",
    "clear_tied_kernel_cache",
    "nearest_conv2d",
    "resize_conv2d_reference",
    "resize_filter",
    "tied_kernel_matrix",
    "tied_transposed_kernel",
]

RESIZE_MODES = ("nearest", "bilinear")
PADDING_MODES = ("zeros", "reflect")
_CONV_TAPS = 3


def resize_filter(mode: str, scale: int = 2) -> Tensor:
    """The 1-D transposed-convolution filter that a resize by ``scale`` applies along each axis.

    ``nearest`` is a box of ``scale`` ones; ``bilinear`` (``align_corners=False``, even ``scale``)
    a triangle of ``2*scale`` taps, ``[0.25, 0.75, 0.75, 0.25]`` for ``scale=2``.

    Example:
        >>> resize_filter("bilinear").tolist()
        [0.25, 0.75, 0.75, 0.25]
    """
    check_choice(mode, "mode", RESIZE_MODES)
    if mode == "nearest":
        return torch.ones(scale, dtype=torch.float64)
    if scale % 2:
        raise ValueError(f"the bilinear filter is only exact here for even scales; got {scale}.")
    taps = torch.arange(2 * scale, dtype=torch.float64)
    return 1.0 - (taps + 0.5 - scale).abs() / scale


def tied_kernel_matrix(resize_taps: Tensor, taps: int = _CONV_TAPS) -> Tensor:
    """``M`` with ``M[q, t] = resize_taps[q + t - (taps - 1)]``: the fused kernel is ``M w Mᵀ``.

    ``resize_taps`` is the resize's 1-D filter (:func:`resize_filter`) and ``taps`` the width of the
    convolution that follows it.

    For nearest ×2 and a 3-tap conv this is the article's ``[[0,0,1],[0,1,1],[1,1,0],[1,0,0]]``
    (rows: the 4 transposed-conv taps; columns: the 3 conv taps).

    Example:
        >>> tied_kernel_matrix(resize_filter("nearest")).int().tolist()
        [[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]]
    """
    length = resize_taps.numel() + taps - 1
    q = torch.arange(length).unsqueeze(1)
    t = torch.arange(taps).unsqueeze(0)
    index = q + t - (taps - 1)
    valid = (index >= 0) & (index < resize_taps.numel())
    picked = resize_taps[index.clamp(0, resize_taps.numel() - 1)]
    return torch.where(valid, picked, torch.zeros((), dtype=resize_taps.dtype))


def tied_transposed_kernel(weight: Tensor, matrix: Tensor) -> Tensor:
    """Map a conv weight ``(C_out, C_in, k, k)`` to the tied transposed-conv weight.

    Returns ``(C_in, C_out, L, L)`` with ``K = M w Mᵀ`` for every channel pair, in the layout
    :func:`torch.nn.functional.conv_transpose2d` expects.

    Example:
        >>> w = torch.randn(3, 2, 3, 3)
        >>> m = tied_kernel_matrix(resize_filter("nearest"))
        >>> torch.allclose(tied_transposed_kernel(w, m), torch.einsum("ka,oiab,lb->iokl", m.float(), w, m.float()))
        True
    """
    matrix = matrix.to(device=weight.device, dtype=weight.dtype)
    c_out, c_in, k, _ = weight.shape
    length = matrix.shape[0]
    # One matrix product over all channel pairs: each L×L kernel is a fixed linear map (M ⊗ M) of the
    # k×k taps. Transposing the small weight first writes K in conv_transpose2d's layout directly; an
    # einsum here picks a batched layout that is several times slower at high channel counts.
    taps = weight.transpose(0, 1).reshape(c_in * c_out, k * k)
    return (taps @ torch.kron(matrix, matrix).t()).view(c_in, c_out, length, length)


if hasattr(torch.compiler, "is_compiling"):
    _is_compiling = torch.compiler.is_compiling
else:  # torch < 2.3
    import torch._dynamo

    _is_compiling = torch._dynamo.is_compiling

_MATRICES: dict[tuple[str, int], Tensor] = {}
# The last tied kernel of each parameter, per (mode, scale): (weak reference, version, data pointer,
# dtype, device, inference mode, a copy of the weight, kernel). Only parameters are kept; a computed weight is a new tensor at every call.
_KERNELS: dict[tuple[int, str, int], tuple] = {}


def _build_tied(weight: Tensor, mode: str, scale: int) -> Tensor:
    key = (mode, scale)
    if key not in _MATRICES:  # a few small constant matrices, built once per process
        _MATRICES[key] = tied_kernel_matrix(resize_filter(mode, scale))
    # Built in the weight's own dtype even under autocast: the convolution casts it as autocast says, and
    # a kept kernel stays valid outside autocast.
    with torch.autocast("cuda" if weight.is_cuda else "cpu", enabled=False):
        return tied_transposed_kernel(weight, _MATRICES[key])


def _tied(weight: Tensor, mode: str, scale: int) -> Tensor:
    """The tied kernel of ``weight``; reused while the parameter is unchanged and no gradient is needed.

    With autograd recording (training) the kernel is rebuilt at every call, so gradients reach the
    weight and an optimiser step is seen at once. Without it, the kernel of a parameter is kept and
    reused while the parameter holds the same values: its version counter (bumped by every in-place
    write: an optimiser step, ``load_state_dict``, ``copy_``), storage, dtype and device are compared
    first, then its values with a copy kept beside the kernel, so writes that bypass the version counter
    (through ``.data``, or an EMA tensor updated while swapped out and swapped back in) are seen too.
    """
    if _is_compiling():
        return tied_transposed_kernel(weight, tied_kernel_matrix(resize_filter(mode, scale)))
    if (not isinstance(weight, torch.nn.Parameter) or weight.is_inference()
            or (weight.requires_grad and torch.is_grad_enabled())):
        return _build_tied(weight, mode, scale)
    key = (id(weight), mode, scale)
    # A kernel made under inference_mode is an inference tensor, which autograd may not save: kept apart.
    state = (weight._version, weight.data_ptr(), weight.dtype, weight.device, torch.is_inference_mode_enabled())
    cached = _KERNELS.get(key)
    if cached is not None and cached[0]() is weight and cached[1:-2] == state and torch.equal(cached[-2], weight):
        return cached[-1]
    kernel = _build_tied(weight, mode, scale)
    _KERNELS[key] = (weakref.ref(weight, lambda _, key=key: _KERNELS.pop(key, None)), *state,
                     weight.detach().clone(), kernel)
    return kernel


def clear_tied_kernel_cache() -> None:
    """Forget every kept tied kernel and the weight copies kept beside them (rebuilt at the next call).

    Never needed for correctness (a changed weight is always noticed); it frees their memory.
    """
    _KERNELS.clear()


def _replicate_pad1(x: Tensor) -> Tensor:
    """Replicate-pad the last two axes by one sample, written with slices and concatenation.

    Equal to ``F.pad(x, (1, 1, 1, 1), mode="replicate")``; that op's backward has a stride bug under
    ``torch.compile`` in training, which this spelling does not hit.
    """
    x = torch.cat([x[..., :1], x, x[..., -1:]], dim=-1)
    return torch.cat([x[..., :1, :], x, x[..., -1:, :]], dim=-2)


def _check_conv_weight(weight: Tensor) -> None:
    if weight.dim() != 4 or weight.shape[-2:] != (_CONV_TAPS, _CONV_TAPS):
        raise ValueError(
            f"weight must have shape (C_out, C_in, 3, 3); got {tuple(weight.shape)}."
        )


def resize_conv2d_reference(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    mode: str = "nearest",
    scale: int = 2,
    padding: str = "zeros",
) -> Tensor:
    """Resize by ``scale``, pad by one pixel, then a 3×3 convolution: the plain reference path.

    Shape:
        - x: ``(B, C_in, H, W)``; weight: ``(C_out, C_in, 3, 3)``
        - output: ``(B, C_out, scale*H, scale*W)``
    """
    check_choice(mode, "mode", RESIZE_MODES)
    check_choice(padding, "padding", PADDING_MODES)
    _check_conv_weight(weight)
    if mode == "nearest":
        up = F.interpolate(x, scale_factor=scale, mode="nearest")
    else:
        up = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    if padding == "zeros":  # the conv's own zero padding: no padded copy of the resized image
        return F.conv2d(up, weight, bias, padding=1)
    return F.conv2d(F.pad(up, (1, 1, 1, 1), mode="reflect"), weight, bias)


def nearest_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    scale: int = 2,
    padding: str = "zeros",
) -> Tensor:
    """Nearest resize by ``scale`` then a 3×3 conv, as one weight-tied transposed convolution.

    With zero padding, the upsampled image's zero border is the input's zero border, so the fused
    op is ``conv_transpose2d(x, K, stride=scale, padding=1)``. Reflect padding of the upsampled
    image by one pixel equals replicate padding of the input (for ``scale >= 2`` the reflected
    pixel is a copy of the border pixel), so it is ``conv_transpose2d(replicate_pad(x), K,
    stride=scale, padding=scale + 1)``. Both are exact.

    Shape:
        - x: ``(B, C_in, H, W)``; weight: ``(C_out, C_in, 3, 3)``
        - output: ``(B, C_out, scale*H, scale*W)``

    Example:
        >>> x, w = torch.randn(1, 2, 5, 7), torch.randn(3, 2, 3, 3)
        >>> ref = resize_conv2d_reference(x, w, mode="nearest", padding="reflect")
        >>> torch.allclose(nearest_conv2d(x, w, padding="reflect"), ref, atol=1e-5)
        True
    """
    check_choice(padding, "padding", PADDING_MODES)
    _check_conv_weight(weight)
    kernel = _tied(weight, "nearest", scale)
    if padding == "zeros":
        return F.conv_transpose2d(x, kernel, bias, stride=scale, padding=1)
    return F.conv_transpose2d(_replicate_pad1(x), kernel, bias, stride=scale, padding=scale + 1)


def _upsample_rows_extended(rows: Tensor) -> Tensor:
    """Bilinear ×2 along the last axis, extended one sample past each end: ``(..., 2n + 2)``.

    Index ``j`` of the result is upsampled position ``j - 1``; the extension follows the same
    formula with the input's edge replicated, as the fused transposed convolution sees it.
    """
    lead, n = rows.shape[:-1], rows.shape[-1]
    flat = rows.reshape(-1, 1, n)
    flat = torch.cat([flat[..., :1], flat, flat[..., -1:]], dim=-1)
    bilinear_taps = resize_filter("bilinear").to(rows).view(1, 1, -1)
    out = F.conv_transpose1d(flat, bilinear_taps, stride=2, padding=2)
    return out.reshape(*lead, 2 * n + 2)


def _upsample_rows_reflected(rows: Tensor) -> Tensor:
    """Bilinear ×2 along the last axis, reflect-padded by one sample: ``(..., 2n + 2)``."""
    ext = _upsample_rows_extended(rows)
    return torch.cat([ext[..., 2:3], ext[..., 1:-1], ext[..., -3:-2]], dim=-1)


def _bilinear_border(x: Tensor, padding: str, side: str) -> Tensor:
    """The one-pixel ring around the bilinear ×2 image: the fused op's view minus the padding's.

    Returns the difference along one side (``"top"``, ``"bottom"``, ``"left"``, ``"right"``), a
    ``(B, C, 2n + 2)`` strip, where ``n`` is the input's width (top/bottom) or height (left/right).
    Only this ring differs between the fused transposed convolution and the reference path.
    """
    if side in ("left", "right"):
        x = x.transpose(-1, -2)
    first = side in ("top", "left")
    edge = x[..., 0, :] if first else x[..., -1, :]
    fused_view = _upsample_rows_extended(edge)  # the clamped interpolation past the edge
    if padding == "zeros":
        return fused_view
    # Reflect padding copies the upsampled row one step inside: a 3:1 blend of the edge row and
    # its neighbour (the neighbour is the edge itself when the input has a single row).
    inner = x[..., min(1, x.shape[-2] - 1), :] if first else x[..., max(x.shape[-2] - 2, 0), :]
    return fused_view - _upsample_rows_reflected(0.75 * edge + 0.25 * inner)


def bilinear_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    padding: str = "zeros",
) -> Tensor:
    """Bilinear ×2 then a 3×3 conv, as one weight-tied transposed convolution plus a border fix.

    Bilinear ×2 is a 4-tap transposed convolution over the edge-replicated input, so with the conv
    it is ``conv_transpose2d(replicate_pad(x), K, stride=2, padding=4)`` with a 6×6 tied kernel —
    exact everywhere except the outermost output pixels, where that op sees the interpolation
    continued past the edge while the reference sees the conv's padding. Four 1-D convolutions of
    that one-pixel ring with the weight's border rows and columns remove the difference exactly.

    Shape:
        - x: ``(B, C_in, H, W)``; weight: ``(C_out, C_in, 3, 3)``
        - output: ``(B, C_out, 2H, 2W)``

    Example:
        >>> x, w = torch.randn(2, 3, 4, 6), torch.randn(5, 3, 3, 3)
        >>> ref = resize_conv2d_reference(x, w, mode="bilinear")
        >>> torch.allclose(bilinear_conv2d(x, w), ref, atol=1e-5)
        True
    """
    check_choice(padding, "padding", PADDING_MODES)
    _check_conv_weight(weight)
    kernel = _tied(weight, "bilinear", 2)
    out = F.conv_transpose2d(_replicate_pad1(x), kernel, bias, stride=2, padding=4)

    top = F.conv1d(_bilinear_border(x, padding, "top"), weight[:, :, 0, :])
    bottom = F.conv1d(_bilinear_border(x, padding, "bottom"), weight[:, :, 2, :])
    # The ring's corners belong to the top and bottom strips; zero them in the side strips so
    # each ring pixel is corrected once.
    left = _bilinear_border(x, padding, "left")[..., 1:-1]
    right = _bilinear_border(x, padding, "right")[..., 1:-1]
    left = F.conv1d(F.pad(left, (1, 1)), weight[:, :, :, 0])
    right = F.conv1d(F.pad(right, (1, 1)), weight[:, :, :, 2])

    # In place is safe: conv_transpose2d's backward needs its inputs, not its output.
    out[..., 0, :] = out[..., 0, :] - top
    out[..., -1, :] = out[..., -1, :] - bottom
    out[..., :, 0] = out[..., :, 0] - left
    out[..., :, -1] = out[..., :, -1] - right
    return out
