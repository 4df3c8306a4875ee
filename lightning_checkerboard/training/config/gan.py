"""The settings of a DCGAN run (``recipes/gan.py``): :class:`GANConfig` and the limits it checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from lightning_checkerboard._validation import (
    check_choice,
    check_int,
    check_positive_int,
    check_unit_interval,
)
from lightning_checkerboard.metrics.fid import FID_POLICIES
from lightning_checkerboard.models.dcgan import DISCRIMINATOR_NORMS
from lightning_checkerboard.tasks.gan import LOSSES
from lightning_checkerboard.training.config.run import RunConfig, _check_positive_float

__all__ = [
    "DISC_FIRST_KERNELS",
    "DISC_FIRST_STRIDES",
    "MAX_LATENT_DIM",
    "GANConfig",
]

#: Strides and kernels the DCGAN discriminator's first layer takes.
DISC_FIRST_STRIDES = (1, 2)
DISC_FIRST_KERNELS = (3, 4)

#: The longest noise vector a GAN takes (DCGAN uses 100; the generator's first layer grows with it).
MAX_LATENT_DIM = 4096


@dataclass
class GANConfig(RunConfig):
    """A DCGAN run (``recipes/gan.py``): the shared fields plus the networks, losses and FID.

    Attributes:
        gen_channels: generator width (DCGAN's ngf).
        disc_channels: discriminator width (DCGAN's ndf).
        disc_first_stride: stride of the discriminator's first layer, 1 or 2.
        disc_first_kernel: kernel of that layer, 3 or 4 (``None``: 4 with stride 2, 3 with stride 1).
        disc_norm: the discriminator's normalisation (``"batch"``, ``"spectral"``, ``"none"``).
        latent_dim: length of the generator's noise vector (at most :data:`MAX_LATENT_DIM`).
        loss: ``"nonsaturating"`` or ``"hinge"``.
        lr_g: generator learning rate.
        lr_d: discriminator learning rate.
        ema_decay: decay of the generator's weight average that samples and metrics use (0: the live one).
        fid: ``"auto"``, ``"required"`` or ``"off"``.
        fid_samples: generated images per FID.
        fid_weights: an Inception-v3 weights file (``None``: found or downloaded); a resumed run takes
            it from the command line only (see :attr:`RunConfig.LOCAL_FILES`).
    """

    gen_channels: int = 64
    disc_channels: int = 64
    disc_first_stride: int = 2
    disc_first_kernel: int | None = None
    disc_norm: str = "batch"
    latent_dim: int = 100
    loss: str = "nonsaturating"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    ema_decay: float = 0.999
    fid: str = "auto"
    fid_samples: int = 256
    fid_weights: Path | None = None

    # Runs recorded before the weight average and the discriminator choice existed continue as they began.
    LEGACY_DEFAULTS: ClassVar[Mapping[str, Any]] = {"ema_decay": 0.0, "disc_norm": "batch"}
    LOCAL_FILES: ClassVar[tuple[str, ...]] = ("fid_weights",)

    def validate(self) -> None:
        super().validate()
        for name in ("gen_channels", "disc_channels", "fid_samples"):
            check_positive_int(getattr(self, name), name)
        check_int(self.latent_dim, "latent_dim", minimum=1, maximum=MAX_LATENT_DIM)
        check_choice(self.disc_first_stride, "disc_first_stride", DISC_FIRST_STRIDES)
        if self.disc_first_kernel is not None:
            check_choice(self.disc_first_kernel, "disc_first_kernel", DISC_FIRST_KERNELS)
        check_choice(self.disc_norm, "disc_norm", DISCRIMINATOR_NORMS)
        check_choice(self.loss, "loss", LOSSES)
        check_choice(self.fid, "fid", FID_POLICIES)
        self.lr_g = _check_positive_float(self.lr_g, "lr_g")
        self.lr_d = _check_positive_float(self.lr_d, "lr_d")
        self.ema_decay = check_unit_interval(self.ema_decay, "ema_decay")

    def sample_counts(self) -> dict[str, int]:
        counts = super().sample_counts()
        if self.fid != "off":
            counts["fid_samples"] = self.fid_samples
        return counts
