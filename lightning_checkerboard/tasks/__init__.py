"""LightningModules: the training tasks whose models take registry upsamplers."""

from lightning_checkerboard.tasks.gan import GANTask

__all__ = ["GANTask"]
