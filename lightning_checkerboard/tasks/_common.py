"""What every task shares: argument checks, the divergence stop and the held-out images."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_checkerboard._lightning import pl

__all__ = ["check_positive_float", "heldout_images", "stop_if_not_finite"]


def check_positive_float(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as a float, if it is a finite number above zero (or zero with ``allow_zero``).

    Raises:
        ValueError: naming the argument and the value received.
    """
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    if bad or value < 0 or (value == 0 and not allow_zero):
        what = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {what} finite number; got {value!r}.")
    return float(value)


def stop_if_not_finite(module: pl.LightningModule, name: str, value: Tensor) -> bool:
    """``True`` if ``value`` is finite; otherwise mark ``module.diverged`` and stop the trainer.

    The caller skips the optimiser step, so the weights stay those of the last good step (and
    :class:`~lightning_checkerboard.callbacks.RunCheckpoint` does not overwrite them).
    """
    if torch.isfinite(value).all():
        return True
    module.diverged = f"{name} became {value.item()} at step {module.global_step}"
    module.trainer.should_stop = True
    return False


def heldout_images(module: pl.LightningModule, num: int) -> Tensor:
    """The first ``num`` held-out images (in [0, 1]) of the datamodule ``module`` trains with.

    Raises:
        RuntimeError: no trainer, or a datamodule without ``heldout_images()``.
    """
    datamodule = getattr(module.trainer, "datamodule", None) if module._trainer is not None else None
    if datamodule is None or not hasattr(datamodule, "heldout_images"):
        raise RuntimeError(f"{type(module).__name__} measures held-out images: train it with an ImageDataModule.")
    return datamodule.heldout_images()[:num]
