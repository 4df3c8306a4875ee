"""Plain ``nn.Module`` models whose upsampling stages come from the registry, and the loss network."""

from lightning_checkerboard.models.autoencoder import AutoencoderKL
from lightning_checkerboard.models.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init_, num_stages_for
from lightning_checkerboard.models.loss_network import LossNetworkError, VGGFeatures, load_loss_network
from lightning_checkerboard.models.super_resolution import SuperResolutionNet, num_stages_for_scale
from lightning_checkerboard.models.transformer_net import TransformerNet, check_transformer_size

__all__ = [
    "AutoencoderKL",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "LossNetworkError",
    "SuperResolutionNet",
    "TransformerNet",
    "VGGFeatures",
    "check_transformer_size",
    "dcgan_init_",
    "load_loss_network",
    "num_stages_for",
    "num_stages_for_scale",
]
