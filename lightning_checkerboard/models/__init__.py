"""Plain ``nn.Module`` models whose upsampling stages come from the registry."""

from lightning_checkerboard.models.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init_, num_stages_for

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "dcgan_init_", "num_stages_for"]
