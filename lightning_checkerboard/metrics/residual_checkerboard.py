"""Checkerboard score of signed residuals (output minus reference), in 8-bit levels of the residual."""

from __future__ import annotations

from torch import Tensor

from lightning_checkerboard.functional._validation import check_image_batch
from lightning_checkerboard.metrics.checkerboard import CheckerboardScore

__all__ = ["ResidualCheckerboardScore"]


class ResidualCheckerboardScore(CheckerboardScore):
    """The checkerboard score of residuals ``output − reference``, which lie in [-1, 1], not [0, 1].

    Where there is a reference image (super-resolution), the grid pattern an upsampler leaves is
    clearest in the error: the content cancels and the pattern stays. The residual is scored as it
    is, on the scale of the images it came from (255: 8-bit levels), with no shift, scaling or
    clipping: the score's statistics are those of the spectrum, which does not care about the sign
    or the mean of the values (the mean sits at DC, which is not a grid bin). ``diagnostics()`` has
    the same keys as :class:`CheckerboardScore`'s; its ``ratio`` is the pattern's RMS as a fraction of
    the residual's. Residuals are checked for rank, size, dtype (float) and finiteness, not range.

    Args:
        levels, kappa, z, alpha, kwargs: as for :class:`CheckerboardScore`.

    Example:
        >>> import torch
        >>> checker = (-1.0) ** (torch.arange(32)[:, None] + torch.arange(32)[None, :])
        >>> noise = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0)) / 255
        >>> metric = ResidualCheckerboardScore(levels=2)
        >>> metric.update(noise + 3 / 255 * checker)  # an error of RMS 3 levels in a checkerboard
        >>> round(float(metric.compute()))
        3
    """

    def _prepare(self, residual: Tensor) -> Tensor:
        check_image_batch(residual, self.levels, name="residual")
        if not residual.is_floating_point():
            raise TypeError(f"`residual` must be a float tensor, got dtype {residual.dtype}")
        return residual.detach()
