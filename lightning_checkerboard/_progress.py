"""Training progress in iterations (batches), whatever the number of optimisers."""

from __future__ import annotations

__all__ = ["training_iteration"]


def training_iteration(trainer) -> int:
    """Training iterations (batches) completed by ``trainer``.

    Lightning's ``global_step`` counts optimiser steps, two per batch for a GAN; a module declares
    how many it takes per batch with ``optimizer_steps_per_iteration`` (default 1).
    """
    module = getattr(trainer, "lightning_module", None)
    per = getattr(module, "optimizer_steps_per_iteration", 1)
    return trainer.global_step // per
