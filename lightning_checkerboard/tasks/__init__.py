"""LightningModules: the training tasks whose models take registry upsamplers."""

from lightning_checkerboard.tasks.gan import GANTask
from lightning_checkerboard.tasks.style_transfer import StyleTransferTask

__all__ = ["GANTask", "StyleTransferTask"]
