"""The perceptual loss network: frozen VGG-16 features at relu1_2, relu2_2, relu3_3 and relu4_3.

Pretrained ImageNet weights come through torchvision (its download, or the file already in
``$TORCH_HOME/hub/checkpoints``), or from an explicit file. Without network access and without a
cached file, ``source="auto"`` falls back to a seeded random-weight VGG-16 with a loud warning:
random VGG features still carry texture statistics (He, Wang & Hopcroft, 2016), so style transfer
trains, but its losses are not comparable with pretrained ones. :attr:`VGGFeatures.weights` names the
network actually used, and result records carry it so the leaderboard never mixes the two.
"""

from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from lightning_checkerboard._validation import check_choice

__all__ = ["LOSS_NETWORKS", "LossNetworkError", "VGGFeatures", "VGG_LAYERS", "load_loss_network"]

#: ``--loss-network`` choices: pretrained when it can be had (else random), pretrained or an error, random.
LOSS_NETWORKS = ("auto", "vgg16", "random")
#: Feature layers, in depth order, with their index in torchvision's ``vgg16().features``.
VGG_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}
#: torchvision's ImageNet VGG-16 weights (``VGG16_Weights.IMAGENET1K_V1``).
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's VGG-16 "D" configuration up to relu4_3: conv widths, "M" for 2×2 max pooling.
_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)
_PROBE_TIMEOUT_S = 3.0
_PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


class LossNetworkError(RuntimeError):
    """Pretrained weights were required and cannot be had."""


class VGGFeatures(nn.Module):
    """VGG-16 activations at :data:`VGG_LAYERS` of images in [0, 1]; frozen, always in eval mode.

    The layer indices match torchvision's ``vgg16().features``, so its state dict loads as is. Inputs
    are normalised with the ImageNet mean and standard deviation inside the module.

    Args:
        state_dict: weights for ``features`` (torchvision's keys; extra keys such as the
            classifier's are ignored). ``None``: seeded random weights.
        seed: seed of the random weights (torchvision's VGG initialisation: Kaiming normal,
            fan-out, zero biases).
        weights: a name for the weights, stored in :attr:`weights` (``"vgg16-imagenet"``,
            ``"vgg16-random-seed0"``, …).

    Shape:
        - Input: ``(B, 3, H, W)`` in [0, 1] (one channel is repeated to three).
        - Output: ``dict`` layer name → ``(B, C_l, H_l, W_l)``.
    """

    def __init__(self, state_dict: dict[str, Tensor] | None = None, *, seed: int = 0, weights: str | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 3
        for item in _CONFIG:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(width, item, 3, padding=1), nn.ReLU(inplace=False)]
                width = item
        self.features = nn.Sequential(*layers)
        if state_dict is None:
            generator = torch.Generator().manual_seed(seed)
            for module in self.features:
                if isinstance(module, nn.Conv2d):
                    fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
                    with torch.no_grad():
                        module.weight.normal_(0.0, (2.0 / fan_out) ** 0.5, generator=generator)
                        module.bias.zero_()
            self.weights = weights or f"vgg16-random-seed{seed}"
        else:
            ours = {k: v for k, v in state_dict.items() if k.startswith("features.")
                    and int(k.split(".")[1]) < len(self.features)}
            self.load_state_dict(ours, strict=True)
            self.weights = weights or "vgg16-custom"
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:
        return super().train(False)  # frozen: no mode has any other meaning here

    @property
    def pretrained(self) -> bool:
        """Whether the weights were loaded rather than drawn at random."""
        return not self.weights.startswith("vgg16-random")

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"VGGFeatures expects (B, 1 or 3, H, W) images in [0, 1]; got {tuple(images.shape)}.")
        x = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out: dict[str, Tensor] = {}
        last = max(VGG_LAYERS.values())
        for index, module in enumerate(self.features):
            x = module(x)
            if index in _BY_INDEX:
                out[_BY_INDEX[index]] = x
            if index == last:
                break
        return out


_BY_INDEX = {index: name for name, index in VGG_LAYERS.items()}


def _cached_file() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(VGG16_URL).path).name


def _server_answers(url: str, timeout: float = _PROBE_TIMEOUT_S) -> str | None:
    """``None`` if the host accepts a connection within ``timeout`` seconds, else why not."""
    host = urlparse(url).hostname
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return None
    except OSError as err:
        return f"{host} is unreachable ({err.strerror or err})"


def _load_pretrained(weights_path: str | os.PathLike | None) -> tuple[dict[str, Tensor] | None, str]:
    """The pretrained state dict and a description, or ``None`` and the reason it cannot be had."""
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            return None, f"the weights file {path} does not exist"
        try:
            return torch.load(path, map_location="cpu", weights_only=True), f"vgg16-file:{path.name}"
        except Exception as err:  # a truncated or foreign file
            return None, f"the weights file {path} cannot be read ({type(err).__name__}: {err})"
    cached = _cached_file()
    # Behind a proxy a direct connection proves nothing; torch.hub's download goes through it.
    if not cached.is_file() and not any(os.environ.get(v) for v in _PROXY_VARIABLES):
        reason = _server_answers(VGG16_URL)
        if reason is not None:
            return None, f"torchvision's VGG-16 weights are not in {cached.parent} and {reason}"
    try:
        state = torch.hub.load_state_dict_from_url(VGG16_URL, map_location="cpu", progress=False, weights_only=True)
    except Exception as err:  # network errors, a corrupt cache file
        return None, f"torchvision's VGG-16 weights could not be loaded ({type(err).__name__}: {err})"
    return state, "vgg16-imagenet"


def load_loss_network(source: str = "auto", *, weights_path: str | os.PathLike | None = None, seed: int = 0) -> VGGFeatures:
    """Build the perceptual loss network.

    Args:
        source: ``"auto"`` (pretrained ImageNet weights when they can be had, else a seeded random
            VGG-16 with a warning), ``"vgg16"`` (pretrained or :class:`LossNetworkError`) or
            ``"random"`` (seeded random weights, no warning).
        weights_path: a VGG-16 state dict file (torchvision's keys) to use instead of torchvision's
            download/cache.
        seed: seed of the random weights.

    Raises:
        ValueError: an unknown ``source``.
        LossNetworkError: ``source="vgg16"`` and the weights cannot be had.

    Example:
        >>> net = load_loss_network("random", seed=0)
        >>> net.weights, sorted(net(torch.rand(1, 3, 32, 32)))
        ('vgg16-random-seed0', ['relu1_2', 'relu2_2', 'relu3_3', 'relu4_3'])
    """
    check_choice(source, "source", LOSS_NETWORKS)
    if source == "random":
        return VGGFeatures(seed=seed)
    state, description = _load_pretrained(weights_path)
    if state is not None:
        try:
            return VGGFeatures(state, weights=description)
        except RuntimeError as err:  # wrong keys or shapes
            state, description = None, f"the weights do not fit VGG-16's features ({str(err).splitlines()[0]})"
    if source == "vgg16":
        raise LossNetworkError(
            f"pretrained VGG-16 unavailable: {description}; connect once to download the weights, pass a "
            "weights file, or ask for 'auto' (falls back to random weights) or 'random'."
        )
    warnings.warn(
        f"PRETRAINED VGG-16 UNAVAILABLE: {description}. Falling back to a random-weight VGG-16 (seed {seed}); "
        "its losses and results are not comparable with the pretrained network's and are recorded as "
        f"loss network 'vgg16-random-seed{seed}'. Ask for 'vgg16' instead of 'auto' to make this an error.",
        stacklevel=2,
    )
    return VGGFeatures(seed=seed)
