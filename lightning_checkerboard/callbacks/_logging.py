"""Logger-agnostic logging for callbacks: any Lightning logger, and a failure never stops training."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightning_checkerboard._lightning import pl, rank_zero_warn
from lightning_checkerboard._progress import training_iteration
from lightning_checkerboard.run_samples import write_final_samples

__all__ = ["iteration", "log_images", "log_scalars", "save_final_samples", "trainer_run_directory"]

_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        rank_zero_warn(message)


def trainer_run_directory(trainer: pl.Trainer) -> Path:
    """Where a run's files go: ``trainer.default_root_dir`` (the training skeleton sets it to the run directory)."""
    return Path(trainer.default_root_dir)


#: Training iterations (batches) completed; see :func:`~lightning_checkerboard._progress.training_iteration`.
iteration = training_iteration


def log_scalars(trainer: pl.Trainer, metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Send finite scalar metrics to every logger of the trainer (rank zero only).

    Unlike ``LightningModule.log``, this works from any hook, including ``on_train_end``.
    """
    if trainer.global_rank != 0:
        return
    clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
    step = iteration(trainer) if step is None else step
    for logger in trainer.loggers:
        try:
            logger.log_metrics(clean, step=step)
        except Exception as err:  # a logging backend may fail in any way; training must go on
            _warn_once(f"scalars-{type(logger).__name__}", f"{type(logger).__name__} failed to log metrics ({err}); training goes on.")


def log_images(
    trainer: pl.Trainer, key: str, images: list[np.ndarray], step: int | None = None, captions: list[str] | None = None
) -> None:
    """Log ``(H, W, 3)`` uint8 images with every logger that can show images (W&B, TensorBoard)."""
    if trainer.global_rank != 0:
        return
    step = iteration(trainer) if step is None else step
    for logger in trainer.loggers:
        name = type(logger).__name__
        try:
            if hasattr(logger, "log_image"):  # WandbLogger and others with the same API
                extra = {"caption": captions} if captions else {}
                logger.log_image(key=key, images=images, step=step, **extra)
            elif name == "TensorBoardLogger":
                for i, image in enumerate(images):
                    logger.experiment.add_image(f"{key}/{i}" if len(images) > 1 else key, image, step, dataformats="HWC")
        except Exception as err:
            _warn_once(f"images-{name}", f"{name} failed to log images ({err}); training goes on.")


def save_final_samples(trainer: pl.Trainer, images: torch.Tensor) -> Path | None:
    """Save the final measurement's images (this process's share, ``(n, C, H, W)`` in [0, 1]) in the run directory.

    Under DDP the shares are gathered on rank zero and saved in rank order (rank 0's share, then
    rank 1's, …: how a share is cut is the image source's business); rank zero writes ``samples/final_samples.npz``
    (:func:`~lightning_checkerboard.run_samples.write_final_samples`) and returns its path, the other
    ranks return ``None``. A failure to write is a warning: the run's numbers are already measured.
    """
    share = images.detach().float().mul(255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    shares = [share]
    if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        shares = [None] * trainer.world_size
        torch.distributed.all_gather_object(shares, share)
    if trainer.global_rank != 0:
        return None
    try:
        return write_final_samples(trainer_run_directory(trainer), np.concatenate(shares))
    except (OSError, ValueError) as err:  # ValueError: images of another channel count than 1 or 3
        _warn_once("final-samples", f"the final samples could not be saved ({err}); the run goes on.")
        return None
