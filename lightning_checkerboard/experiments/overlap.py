"""Uneven overlap: the article's claim that kernels not divisible by the stride overlap unevenly, compounding through stacks."""

from __future__ import annotations

from collections.abc import Iterable

from lightning_checkerboard.functional.overlap import overlap_ratio

__all__ = ["overlap_ratios"]


def overlap_ratios(kernels: Iterable[int] = (3, 4, 5), layers: Iterable[int] = (1, 2, 3), *, stride: int = 2,
                   ndim: int = 2) -> dict[tuple[int, int], float]:
    """Max/min of the interior overlap map, ``(kernel, layers)`` → ratio; 1.0 is even overlap.

    Example:
        >>> overlap_ratios((3, 4), (1,), ndim=1)
        {(3, 1): 2.0, (4, 1): 1.0}
    """
    return {(k, n): overlap_ratio(k, stride, n, ndim=ndim) for k in kernels for n in layers}
