"""Typed settings of a training run: the fields every task shares and each task's own, one module each.

- :mod:`~lightning_checkerboard.training.config.run`: :class:`RunConfig` (the shared fields),
  :class:`ConfigError`, :data:`MAX_SEED`, :data:`WANDB_NAME_FORBIDDEN`.
- :mod:`~lightning_checkerboard.training.config.gan`: :class:`GANConfig` and the DCGAN limits
  (:data:`DISC_FIRST_STRIDES`, :data:`DISC_FIRST_KERNELS`, :data:`MAX_LATENT_DIM`).
- :mod:`~lightning_checkerboard.training.config.style_transfer`: :class:`StyleTransferConfig`.
- :mod:`~lightning_checkerboard.training.config.super_resolution`: :class:`SuperResolutionConfig`.
- :mod:`~lightning_checkerboard.training.config.autoencoder`: :class:`AutoencoderConfig`.

A config is a plain dataclass, checked when it is made: a wrong value raises ``ValueError`` naming the
field. The defaults are the recipes' defaults, so ``GANConfig()`` is the run that ``python recipes/gan.py``
makes.

Example:
    >>> config = GANConfig(upsampler="deconv_k3", max_steps=400)
    >>> config.record_config()["max_steps"], config.output_dir.as_posix()
    (400, 'runs')
    >>> StyleTransferConfig().record_config()["content_dataset"]
    'photos'
    >>> GANConfig(batch_size=0)
    Traceback (most recent call last):
        ...
    ValueError: batch_size must be a positive integer; got 0.
"""

from lightning_checkerboard.training.config.autoencoder import AutoencoderConfig
from lightning_checkerboard.training.config.gan import (
    DISC_FIRST_KERNELS,
    DISC_FIRST_STRIDES,
    MAX_LATENT_DIM,
    GANConfig,
)
from lightning_checkerboard.training.config.run import MAX_SEED, WANDB_NAME_FORBIDDEN, ConfigError, RunConfig
from lightning_checkerboard.training.config.style_transfer import StyleTransferConfig
from lightning_checkerboard.training.config.super_resolution import SuperResolutionConfig

__all__ = [
    "AutoencoderConfig",
    "DISC_FIRST_KERNELS",
    "DISC_FIRST_STRIDES",
    "MAX_LATENT_DIM",
    "MAX_SEED",
    "WANDB_NAME_FORBIDDEN",
    "ConfigError",
    "GANConfig",
    "RunConfig",
    "StyleTransferConfig",
    "SuperResolutionConfig",
]
