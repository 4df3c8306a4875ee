"""LightningModules: the training tasks whose models take registry upsamplers."""

from lightning_checkerboard.tasks.autoencoder import AutoencoderTask
from lightning_checkerboard.tasks.gan import GANTask
from lightning_checkerboard.tasks.style_transfer import StyleTransferTask
from lightning_checkerboard.tasks.super_resolution import SuperResolutionTask

__all__ = ["AutoencoderTask", "GANTask", "StyleTransferTask", "SuperResolutionTask"]
