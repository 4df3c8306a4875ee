"""The settings of an autoencoder run (``recipes/autoencoder.py``): :class:`AutoencoderConfig`.

Example:
    >>> config = AutoencoderConfig()
    >>> config.latent_stride(), config.block_channel_list(), config.heldout_photo_names()
    (8, (32, 64, 64), ('astronaut', 'stereo_motorcycle'))
    >>> AutoencoderConfig(image_size=36)
    Traceback (most recent call last):
        ...
    ValueError: image_size must be a multiple of the latent stride 8 and at least 32; got 36.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from lightning_checkerboard._validation import check_choice, check_int, check_number, check_positive_int
from lightning_checkerboard.functional._validation import MIN_BINS_PER_CELL
from lightning_checkerboard.models.loss_network import LOSS_NETWORKS
from lightning_checkerboard.training.config._heldout import HeldoutPhotosSetting
from lightning_checkerboard.training.config.run import RunConfig

__all__ = ["AutoencoderConfig", "MAX_IMAGE_SIZE", "MAX_STAGES", "MAX_WIDTH"]

#: The most encoder/decoder stages (a latent stride of 2**5 = 32).
MAX_STAGES = 5
#: The widest stage: a small autoencoder (Stable Diffusion's VAE is 512 wide); wider asks for gigabytes.
MAX_WIDTH = 1024
#: The largest crop side: the photographs are about 512 px, and 512 training crops of 1024 px hold 1.6 GB.
MAX_IMAGE_SIZE = 1024


@dataclass
class AutoencoderConfig(RunConfig, HeldoutPhotosSetting):
    """An autoencoder run: the shared fields plus the KL autoencoder's widths and its loss.

    ``image_size`` is the side of the crops; it must be a multiple of the latent stride
    ``2 ** len(block_channels)`` with at least four latent pixels per side (the checkerboard score's
    top period needs four cells), and at most :data:`MAX_IMAGE_SIZE`; each width is at most :data:`MAX_WIDTH`.
    With ``dataset="photos"`` the held-out images are crops of whole
    photographs that training never sees (``heldout_photos``); other sources use their usual held-out split.

    Attributes:
        block_channels: comma-separated width of each stage, finest first (one ×2 stage each).
        latent_channels: channels of the latent (Stable Diffusion's VAE: 4).
        layers_per_block: ResNet blocks per stage.
        kl_weight: weight of the KL term against the per-element L1 (latent diffusion's KL-f8: 1e-6).
        perceptual_weight: weight of the VGG-16 feature loss (0: off).
        loss_network: ``"auto"``, ``"vgg16"`` or ``"random"``: the perceptual term's network.
        loss_network_weights: a VGG-16 state-dict file (``None``: torchvision's); a resumed run takes
            it from the command line only (see :attr:`RunConfig.LOCAL_FILES`).
        loss_network_seed: seed of a random-weight VGG-16.
        lr: Adam learning rate.
        heldout_photos: comma-separated photograph names held out of ``photos`` (``None``: the
            default pair); only with ``dataset="photos"``.
    """

    upsampler: str = "nearest_conv"
    image_size: int = 48
    batch_size: int = 16
    max_steps: int = 600
    eval_every: int = 0
    eval_samples: int = 64
    block_channels: str = "32,64,64"
    latent_channels: int = 4
    layers_per_block: int = 1
    kl_weight: float = 1e-6
    perceptual_weight: float = 0.0
    loss_network: str = "auto"
    loss_network_weights: Path | None = None
    loss_network_seed: int = 0
    lr: float = 1e-3
    heldout_photos: str | None = None

    LOCAL_FILES: ClassVar[tuple[str, ...]] = ("loss_network_weights",)

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.block_channels, str):
            raise ValueError(f"block_channels must be comma-separated positive integers; got {self.block_channels!r}.")
        widths = self.block_channel_list()
        if not 1 <= len(widths) <= MAX_STAGES:
            raise ValueError(f"block_channels must name 1 to {MAX_STAGES} stages; got {self.block_channels!r}.")
        if max(widths) > MAX_WIDTH:
            raise ValueError(f"block_channels must be widths from 1 to {MAX_WIDTH}; got {self.block_channels!r}.")
        stride, smallest = self.latent_stride(), self.latent_stride() * MIN_BINS_PER_CELL
        if self.image_size % stride or self.image_size < smallest:
            raise ValueError(f"image_size must be a multiple of the latent stride {stride} and at least {smallest}; "
                             f"got {self.image_size}.")
        if self.image_size > MAX_IMAGE_SIZE:
            raise ValueError(f"image_size must be at most {MAX_IMAGE_SIZE}; got {self.image_size}.")
        for name in ("latent_channels", "layers_per_block"):
            check_positive_int(getattr(self, name), name)
        for name in ("kl_weight", "perceptual_weight"):
            setattr(self, name, check_number(getattr(self, name), name, minimum=0.0))
        self.lr = check_number(self.lr, "lr", minimum=0.0, strict_minimum=True)
        check_choice(self.loss_network, "loss_network", LOSS_NETWORKS)
        check_int(self.loss_network_seed, "loss_network_seed", minimum=0)
        self._check_heldout_photos()

    def block_channel_list(self) -> tuple[int, ...]:
        """``block_channels`` as a tuple of integers.

        Raises:
            ValueError: an entry that is not a positive integer.
        """
        widths = []
        for part in self.block_channels.split(","):
            try:
                width = int(part.strip())
            except ValueError:
                width = 0
            if width < 1:
                raise ValueError(f"block_channels must be comma-separated positive integers; "
                                 f"got {self.block_channels!r}.")
            widths.append(width)
        return tuple(widths)

    def latent_stride(self) -> int:
        """How many pixels one latent pixel spans: ``2 ** len(block_channels)``."""
        return 2 ** len(self.block_channel_list())
