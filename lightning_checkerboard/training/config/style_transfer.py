"""The settings of a fast style-transfer run (``recipes/style_transfer.py``): :class:`StyleTransferConfig`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from lightning_checkerboard._validation import (
    check_choice,
    check_non_negative_int,
    check_number,
    check_positive_int,
)
from lightning_checkerboard.models.loss_network import LOSS_NETWORKS, VGG_LAYERS
from lightning_checkerboard.training.config.run import RunConfig, _check_positive_float, _check_text

__all__ = [
    "StyleTransferConfig",
]


@dataclass
class StyleTransferConfig(RunConfig):
    """A fast style-transfer run (``recipes/style_transfer.py``): the shared fields plus style and loss.

    ``dataset`` holds the content images; its flag and record key are ``content_dataset``.

    Attributes:
        base_channels: transformer width (Johnson et al.: 32).
        style: an image file, or the name of a bundled style image.
        style_size: side of the style image (``None``: ``image_size``).
        content_weight: weight of the content loss.
        style_weight: weight of the style loss.
        tv_weight: weight of the total-variation loss (0: off).
        content_layer: the VGG-16 layer of the content loss.
        loss_network: ``"auto"``, ``"vgg16"`` or ``"random"``.
        loss_network_weights: a VGG-16 state-dict file (``None``: torchvision's); a resumed run takes
            it from the command line only (see :attr:`RunConfig.LOCAL_FILES`).
        loss_network_seed: seed of a random-weight VGG-16.
        lr: learning rate.
    """

    image_size: int = 128
    batch_size: int = 4
    max_steps: int = 200
    eval_every: int = 100
    eval_samples: int = 64
    base_channels: int = 32
    style: str = "immunohistochemistry"
    style_size: int | None = None
    content_weight: float = 1.0
    style_weight: float = 1.0
    tv_weight: float = 0.0
    content_layer: str = "relu2_2"
    loss_network: str = "auto"
    loss_network_weights: Path | None = None
    loss_network_seed: int = 0
    lr: float = 1e-3

    KEYS: ClassVar[Mapping[str, str]] = {"dataset": "content_dataset"}
    LOCAL_FILES: ClassVar[tuple[str, ...]] = ("loss_network_weights",)

    def validate(self) -> None:
        super().validate()
        check_positive_int(self.base_channels, "base_channels")
        _check_text(self.style, "style")
        if self.style_size is not None:
            check_positive_int(self.style_size, "style_size")
        check_non_negative_int(self.loss_network_seed, "loss_network_seed")
        check_choice(self.content_layer, "content_layer", tuple(VGG_LAYERS))
        check_choice(self.loss_network, "loss_network", LOSS_NETWORKS)
        self.content_weight = _check_positive_float(self.content_weight, "content_weight")
        self.style_weight = _check_positive_float(self.style_weight, "style_weight")
        self.lr = _check_positive_float(self.lr, "lr")
        self.tv_weight = check_number(self.tv_weight, "tv_weight", minimum=0.0)
