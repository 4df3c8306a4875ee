"""``StyleTransferTask``: fast style transfer (Johnson et al., 2016) with registry upsamplers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lightning_checkerboard._lightning import pl
from lightning_checkerboard._validation import check_choice, check_number, check_positive_int
from lightning_checkerboard.models.loss_network import VGG_LAYERS, VGGFeatures, load_loss_network
from lightning_checkerboard.models.transformer_net import TransformerNet
from lightning_checkerboard.tasks._common import stop_if_not_finite

__all__ = ["MIN_STYLE_SIDE", "StyleTransferTask", "check_style_side", "content_loss", "gram_matrix", "style_loss",
           "total_variation"]

#: VGG-16 pools three times before relu4_3; below this the deepest style layer has almost no pixels.
MIN_STYLE_SIDE = 16


def check_style_side(side: object, name: str = "style image side") -> int:
    """Check a style image side (the style image never passes the transformer, only VGG-16).

    Raises:
        ValueError: a side below :data:`MIN_STYLE_SIDE` or not an integer.
    """
    if isinstance(side, bool) or not isinstance(side, int) or side < MIN_STYLE_SIDE:
        raise ValueError(f"{name} must be an integer of at least {MIN_STYLE_SIDE} pixels; got {side!r}.")
    return side


def gram_matrix(features: Tensor) -> Tensor:
    """Gram matrices ``F Fᵀ / (C H W)`` of feature maps.

    Shape:
        - Input: ``(B, C, H, W)``.
        - Output: ``(B, C, C)``.
    """
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def _relative_sq_error(value: Tensor, target: Tensor) -> Tensor:
    """Per-sample ``‖value − target‖² / ‖target‖²``, averaged over the batch."""
    dims = tuple(range(1, value.dim()))
    error = (value - target).pow(2).sum(dims)
    scale = target.pow(2).sum(dims).clamp_min(torch.finfo(target.dtype).tiny)
    return (error / scale).mean()


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Relative squared feature error over the batch: ``Σ_b ‖φ(ŷ_b) − φ(x_b)‖² / Σ_b ‖φ(x_b)‖²``.

    Relative, so one weight means the same thing with pretrained and random loss networks, whose
    activations differ in scale by orders of magnitude. Normalised by the whole batch, not image by
    image: a dark, flat photo has little feature energy, and dividing by its own would let it
    dominate the loss.
    """
    return (features - target).pow(2).sum() / target.pow(2).sum().clamp_min(torch.finfo(target.dtype).tiny)


def style_loss(features: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> Tensor:
    """Sum over layers of the relative squared Gram error ``‖G(φ_l(ŷ)) − G_l‖² / ‖G_l‖²``.

    Args:
        features: layer name → ``(B, C, H, W)`` activations of the stylised images.
        targets: layer name → ``(C, C)`` (or ``(B, C, C)``) Gram matrices of the style image.
    """
    total = None
    for name, target in targets.items():
        gram = gram_matrix(features[name])
        term = _relative_sq_error(gram, target.expand_as(gram))
        total = term if total is None else total + term
    if total is None:
        raise ValueError("style_loss needs at least one layer.")
    return total


def total_variation(images: Tensor) -> Tensor:
    """Mean absolute difference between horizontally and vertically adjacent pixels."""
    return (images[..., 1:, :] - images[..., :-1, :]).abs().mean() + (images[..., 1:] - images[..., :-1]).abs().mean()


class StyleTransferTask(pl.LightningModule):
    """Train a feed-forward style network whose two upsampling stages come from the registry.

    Loss: ``content_weight · content + style_weight · style (+ tv_weight · tv)`` on frozen VGG-16
    features (:mod:`~lightning_checkerboard.models.loss_network`): content on ``content_layer`` of
    the content image, style as Gram matrices on ``style_layers`` of the style image. Both terms are
    relative errors (see :func:`content_loss`, :func:`style_loss`). Total variation is off by
    default: it smooths exactly the high-frequency artifacts this benchmark measures.

    Images are in [0, 1]; batches from :class:`~lightning_checkerboard.data.ImageDataModule` (in
    [-1, 1]) are mapped there. The style image is a buffer (saved in checkpoints); the loss network
    is not a submodule, so it stays out of checkpoints and optimisers and is moved to the task's
    device when used; it and the losses run in float32 under every ``precision`` (Gram matrices of
    VGG activations overflow float16). ``StyleTransferTask.load_from_checkpoint(path,
    loss_network=...)`` restores a trained task. Logged: ``loss/total``, ``loss/content``,
    ``loss/style`` and, when on, ``loss/tv``. A non-finite loss stops training and sets
    :attr:`diverged`.

    Args:
        upsampler: one registered upsampler for both stages, or one per stage.
        style_image: ``(3, H, W)`` in [0, 1] (sides of at least 16 pixels); required unless
            ``style_shape`` is given.
        loss_network: a :class:`~lightning_checkerboard.models.loss_network.VGGFeatures`; default:
            ``load_loss_network("random")``.
        base_channels: transformer width (Johnson et al.: 32).
        content_weight: weight of the content loss (positive).
        style_weight: weight of the style loss (positive).
        tv_weight: total-variation weight (0: off).
        content_layer: one of :data:`~lightning_checkerboard.models.loss_network.VGG_LAYERS`.
        style_layers: a non-empty subset of them.
        lr: Adam learning rate.
        num_fixed_samples: held-out content images in the sample grids.
        upsampler_options: options for both stages (e.g. ``{"padding": "reflect"}``).
        style_shape: saved with the hyperparameters, so ``load_from_checkpoint`` can make a
            placeholder style image that the checkpoint's state dict then fills.

    Raises:
        ValueError: an unknown upsampler or layer, a bad style image, non-positive weights or rate.

    Example:
        >>> task = StyleTransferTask("nearest_conv", style_image=torch.rand(3, 32, 32), base_channels=8)
        >>> task(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        upsampler: str | Sequence[str] = "deconv",
        *,
        style_image: Tensor | None = None,
        loss_network: VGGFeatures | None = None,
        base_channels: int = 32,
        content_weight: float = 1.0,
        style_weight: float = 1.0,
        tv_weight: float = 0.0,
        content_layer: str = "relu2_2",
        style_layers: Sequence[str] = tuple(VGG_LAYERS),
        lr: float = 1e-3,
        num_fixed_samples: int = 8,
        upsampler_options: dict[str, Any] | None = None,
        style_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("content_weight", content_weight), ("style_weight", style_weight), ("lr", lr)):
            check_number(value, name, minimum=0.0, strict_minimum=True)
        check_number(tv_weight, "tv_weight", minimum=0.0)
        check_choice(content_layer, "content_layer", VGG_LAYERS)
        style_layers = tuple(style_layers)
        unknown = [name for name in style_layers if name not in VGG_LAYERS]
        if not style_layers or unknown:
            raise ValueError(f"style_layers must be a non-empty subset of {', '.join(VGG_LAYERS)}; got {list(style_layers)!r}.")
        if style_image is None and style_shape is not None:  # load_from_checkpoint: the state dict fills it
            style_image = torch.zeros(tuple(style_shape))
        if not isinstance(style_image, Tensor) or style_image.dim() != 3 or style_image.shape[0] != 3:
            got = tuple(style_image.shape) if isinstance(style_image, Tensor) else type(style_image).__name__
            raise ValueError(f"style_image must be a (3, H, W) tensor in [0, 1]; got {got}.")
        check_style_side(int(min(style_image.shape[-2:])), "the style image's shorter side")
        style_shape = tuple(style_image.shape)
        if isinstance(upsampler, (list, tuple)):
            upsampler = ",".join(upsampler)
        check_positive_int(num_fixed_samples, "num_fixed_samples")
        self.save_hyperparameters(ignore=["style_image", "loss_network"])
        self.net = TransformerNet(upsampler, base_channels=base_channels, upsampler_options=upsampler_options)
        self.register_buffer("style_image", style_image.detach().float().clone())
        # Kept out of the module tree: frozen, rebuilt from its name, not worth 30 MB per checkpoint.
        self.__dict__["loss_network"] = loss_network if loss_network is not None else load_loss_network("random")
        self._style_targets: dict[str, Tensor] | None = None
        self.diverged: str | None = None
        self.interrupted: str | None = None

    @property
    def stage_names(self) -> list[str]:
        return self.net.stage_names

    @property
    def loss_network_name(self) -> str:
        """Which weights the loss network has (``vgg16-imagenet``, ``vgg16-random-seed0``, …)."""
        return self.loss_network.weights

    def forward(self, content: Tensor) -> Tensor:
        return self.net(content)

    def _features(self, images: Tensor) -> dict[str, Tensor]:
        # The loss network runs in float32 whatever the trainer's precision: Gram matrices of
        # VGG activations overflow float16, and the network is not converted with the task.
        network = self.loss_network
        if next(network.parameters()).device != images.device:
            network.to(images.device)
        with torch.autocast(images.device.type, enabled=False):
            return network(images.float())

    def style_targets(self) -> dict[str, Tensor]:
        """Gram matrices of the style image on ``style_layers`` (computed once per device)."""
        device = self.style_image.device
        if self._style_targets is None or next(iter(self._style_targets.values())).device != device:
            with torch.no_grad(), torch.autocast(device.type, enabled=False):
                features = self._features(self.style_image[None])
                self._style_targets = {name: gram_matrix(features[name])[0] for name in self.hparams.style_layers}
        return self._style_targets

    def losses(self, content: Tensor) -> dict[str, Tensor]:
        """The loss terms for a batch of content images in [0, 1]; ``"total"`` is the weighted sum."""
        hp = self.hparams
        stylised = self.net(content.to(self._net_dtype()))
        with torch.autocast(stylised.device.type, enabled=False):  # the losses in float32 (see _features)
            stylised = stylised.float()
            with torch.no_grad():
                content_features = self._features(content)[hp.content_layer]
            features = self._features(stylised)
            terms = {
                "content": content_loss(features[hp.content_layer], content_features),
                "style": style_loss(features, self.style_targets()),
            }
            total = hp.content_weight * terms["content"] + hp.style_weight * terms["style"]
            if hp.tv_weight > 0:
                terms["tv"] = total_variation(stylised)
                total = total + hp.tv_weight * terms["tv"]
        terms["total"] = total
        return terms

    def _net_dtype(self) -> torch.dtype:
        return next(self.net.parameters()).dtype

    def training_step(self, batch: Tensor | Sequence[Tensor], batch_idx: int) -> Tensor | None:
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        content = (images + 1) / 2  # the data module serves [-1, 1]
        if content.shape[1] == 1:
            content = content.expand(-1, 3, -1, -1)
        terms = self.losses(content)
        if not stop_if_not_finite(self, "style-transfer loss", terms["total"].detach()):
            return None  # Lightning skips the step: the weights stay those of the last good step
        self.log_dict({f"loss/{name}": value.detach() for name, value in terms.items()}, prog_bar=True)
        return terms["total"]

    @torch.no_grad()
    def stylise(self, content: Tensor, batch_size: int = 16) -> Tensor:
        """Stylised images in [0, 1] (clipped), with the network in eval mode, in chunks of ``batch_size``."""
        was_training = self.net.training
        self.net.eval()
        try:
            dtype = self._net_dtype()
            out = [self.net(chunk.to(self.device, dtype)).float().clamp(0, 1) for chunk in content.split(batch_size)]
        finally:
            self.net.train(was_training)
        return torch.cat(out)

    def _heldout(self, num: int) -> Tensor:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None or not hasattr(datamodule, "heldout_images"):
            raise RuntimeError("StyleTransferTask measures stylised held-out content: train it with an ImageDataModule.")
        content = datamodule.heldout_images()[:num]
        return content.expand(-1, 3, -1, -1) if content.shape[1] == 1 else content

    def sample(self, content: Tensor | None = None) -> Tensor:
        """Content | stylised pairs, interleaved ``(2N, 3, H, W)`` in [0, 1], for sample grids.

        Args:
            content: ``(N, 3, H, W)`` in [0, 1]; default: the first ``num_fixed_samples`` held-out
                images of the trainer's datamodule.
        """
        if content is None:
            content = self._heldout(self.hparams.num_fixed_samples)
        content = content.to(self.device, torch.float32)
        stylised = self.stylise(content)
        return torch.stack([content, stylised], dim=1).flatten(0, 1)

    def metric_samples(self, num: int, *, seed: int, batch_size: int, rank: int = 0, world_size: int = 1) -> Tensor:
        """This process's share of the first ``num`` held-out content images, stylised (``seed`` unused)."""
        return self.stylise(self._heldout(num)[rank::world_size], batch_size)

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=self.hparams.lr)
