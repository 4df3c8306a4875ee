"""The settings of a super-resolution run (``recipes/super_resolution.py``): :class:`SuperResolutionConfig`.

Example:
    >>> config = SuperResolutionConfig(scale=4)
    >>> config.image_size, config.heldout_photo_names()
    (64, ('astronaut', 'stereo_motorcycle'))
    >>> SuperResolutionConfig(image_size=30, scale=4)
    Traceback (most recent call last):
        ...
    ValueError: image_size must be a multiple of the scale 4 and at least 16; got 30.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightning_checkerboard._validation import check_choice, check_number, check_positive_int
from lightning_checkerboard.callbacks.fidelity import min_image_size
from lightning_checkerboard.models.super_resolution import ACTIVATIONS, SUPPORTED_SCALES
from lightning_checkerboard.tasks.super_resolution import SR_LOSSES
from lightning_checkerboard.training.config._heldout import HeldoutPhotosSetting
from lightning_checkerboard.training.config.run import RunConfig

__all__ = ["SuperResolutionConfig"]


@dataclass
class SuperResolutionConfig(RunConfig, HeldoutPhotosSetting):
    """A super-resolution run: the shared fields plus the scale, the ESPCN-style network and its loss.

    ``image_size`` is the side of the high-resolution crops; the network sees them downscaled by
    ``scale``. With ``dataset="photos"`` the held-out images are crops of whole photographs that
    training never sees (``heldout_photos``); other sources use their usual held-out split.

    Attributes:
        scale: the super-resolution factor (one ×2 upsampling stage per doubling).
        loss: the pixel loss, ``"l1"`` or ``"l2"``.
        lr: Adam learning rate.
        features: width of the 5×5 feature layer (ESPCN: 64).
        hidden_channels: width of the 3×3 layer and between stages (ESPCN: 32).
        activation: ``"tanh"`` (ESPCN) or ``"relu"``.
        residual: the network adds a correction to the bicubic interpolation of its input.
        heldout_photos: comma-separated photograph names held out of ``photos`` (``None``: the
            default pair); only with ``dataset="photos"``.
    """

    upsampler: str = "pixel_shuffle_icnr"
    image_size: int = 64
    batch_size: int = 16
    max_steps: int = 1000
    eval_every: int = 250
    eval_samples: int = 64
    scale: int = 2
    loss: str = "l1"
    lr: float = 1e-3
    features: int = 64
    hidden_channels: int = 32
    activation: str = "tanh"
    residual: bool = True
    heldout_photos: str | None = None

    def validate(self) -> None:
        super().validate()
        check_choice(self.scale, "scale", SUPPORTED_SCALES)
        smallest = min_image_size(self.scale)
        if self.image_size % self.scale or self.image_size < smallest:
            raise ValueError(f"image_size must be a multiple of the scale {self.scale} and at least {smallest}; "
                             f"got {self.image_size}.")
        check_choice(self.loss, "loss", SR_LOSSES)
        check_choice(self.activation, "activation", ACTIVATIONS)
        if not isinstance(self.residual, bool):
            raise ValueError(f"residual must be True or False; got {self.residual!r}.")
        for name in ("features", "hidden_channels"):
            check_positive_int(getattr(self, name), name)
        self.lr = check_number(self.lr, "lr", minimum=0.0, strict_minimum=True)
        self._check_heldout_photos()
