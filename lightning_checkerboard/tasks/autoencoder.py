"""``AutoencoderTask``: train a small KL autoencoder whose decoder upsamples with registry layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_checkerboard._lightning import pl
from lightning_checkerboard._validation import check_int, check_positive_int
from lightning_checkerboard.models.autoencoder import DEFAULT_BLOCK_CHANNELS, AutoencoderKL
from lightning_checkerboard.models.loss_network import VGG_LAYERS, VGGFeatures, load_loss_network
from lightning_checkerboard.tasks._common import check_positive_float, heldout_images, stop_if_not_finite

__all__ = ["AutoencoderTask", "kl_divergence"]


def kl_divergence(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL divergence of ``N(mean, exp(logvar))`` from ``N(0, 1)``, summed over the latent, averaged over the batch.

    Example:
        >>> float(kl_divergence(torch.zeros(2, 4, 3, 3), torch.zeros(2, 4, 3, 3)))
        0.0
    """
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1).mean()


class AutoencoderTask(pl.LightningModule):
    """Train an :class:`~lightning_checkerboard.models.autoencoder.AutoencoderKL` to reconstruct its input.

    Every training batch from :class:`~lightning_checkerboard.data.ImageDataModule` (``(B, C, S, S)`` in
    [-1, 1], the range the network works in) is encoded, a latent is sampled from the posterior
    (noise from a generator seeded by ``noise_seed`` and the step, so a resumed run draws the same),
    decoded, and the loss is

    ``L1(reconstruction, image) + kl_weight · KL / (C·S·S) + perceptual_weight · perceptual``

    where ``L1`` is the mean absolute error per element and ``KL`` the posterior's divergence from
    the standard normal per image (:func:`kl_divergence`), so ``kl_weight`` weighs it against the
    per-element L1 as latent diffusion's first stage weighs its KL against the L1 summed over pixels
    (its KL-f8 autoencoder: 1e-6, the default). The optional perceptual term (off by default) is the
    mean squared difference of the loss network's features (:class:`~lightning_checkerboard.models.loss_network.VGGFeatures`,
    every layer of :data:`~lightning_checkerboard.models.loss_network.VGG_LAYERS`, averaged) between
    reconstruction and image in [0, 1]. Logged: ``loss/total``, ``loss/l1``, ``loss/kl`` (and
    ``loss/perceptual``); a non-finite loss stops training and sets :attr:`diverged`.

    What the callbacks use: :meth:`reconstruct` and :attr:`latent_stride`
    (:class:`~lightning_checkerboard.callbacks.reconstruction.ReconstructionMetrics`); :meth:`metric_samples`,
    the reconstructed held-out images (:class:`~lightning_checkerboard.callbacks.ArtifactMetrics`);
    :meth:`sample`, ``input | reconstruction`` pairs (:class:`~lightning_checkerboard.callbacks.SampleGrid`);
    :attr:`stage_names`. Held-out images come from the trainer's datamodule's ``heldout_images()``.

    Args:
        upsampler: one registered upsampler for every decoder stage, or one per stage, coarse stage first.
        channels: image channels.
        latent_channels: channels of the latent.
        block_channels: width of each stage, finest first (one ×2 stage each: a latent stride of
            ``2 ** len(block_channels)``).
        layers_per_block: ResNet blocks per stage.
        kl_weight: weight of the KL term (see above; 0 turns it off).
        perceptual_weight: weight of the perceptual term (0, the default: off, and no loss network is made).
        loss_network: the :class:`~lightning_checkerboard.models.loss_network.VGGFeatures` of the
            perceptual term; default: ``load_loss_network("random")`` when ``perceptual_weight > 0``.
        lr: Adam learning rate.
        noise_seed: seed of the posterior samples.
        num_fixed_samples: held-out images in the sample grids.
        upsampler_options: options for every stage (e.g. ``{"padding": "reflect"}``).

    Raises:
        ValueError: an unknown upsampler, non-positive widths or rate, negative weights; in
            ``on_fit_start``, training images whose side is not a multiple of the latent stride or
            whose channels differ from ``channels``.

    Example:
        >>> task = AutoencoderTask("deconv", block_channels=(8, 8))
        >>> task.latent_stride, task.reconstruct(torch.rand(2, 3, 16, 16)).shape
        (4, torch.Size([2, 3, 16, 16]))
    """

    def __init__(
        self,
        upsampler: str | Sequence[str] = "nearest_conv",
        *,
        channels: int = 3,
        latent_channels: int = 4,
        block_channels: Sequence[int] = DEFAULT_BLOCK_CHANNELS,
        layers_per_block: int = 1,
        kl_weight: float = 1e-6,
        perceptual_weight: float = 0.0,
        loss_network: VGGFeatures | None = None,
        lr: float = 1e-3,
        noise_seed: int = 0,
        num_fixed_samples: int = 8,
        upsampler_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_positive_float("lr", lr)
        check_positive_float("kl_weight", kl_weight, allow_zero=True)
        check_positive_float("perceptual_weight", perceptual_weight, allow_zero=True)
        check_int(noise_seed, "noise_seed", minimum=0)
        check_positive_int(num_fixed_samples, "num_fixed_samples")
        if isinstance(upsampler, (list, tuple)):
            upsampler = ",".join(upsampler)  # a string keeps the saved hyperparameters readable
        block_channels = list(block_channels) if isinstance(block_channels, (list, tuple)) else block_channels
        self.save_hyperparameters(ignore=["loss_network"])
        self.net = AutoencoderKL(upsampler, channels=channels, latent_channels=latent_channels,
                                 block_channels=block_channels, layers_per_block=layers_per_block,
                                 upsampler_options=upsampler_options)
        if perceptual_weight > 0 and loss_network is None:
            loss_network = load_loss_network("random")
        # Kept out of the module tree: frozen, rebuilt from its name, not worth 30 MB per checkpoint.
        self.__dict__["loss_network"] = loss_network if perceptual_weight > 0 else None
        #: Why training stopped early, when the loss went non-finite; ``None`` otherwise.
        self.diverged: str | None = None
        #: Set by :class:`~lightning_checkerboard.callbacks.RunCheckpoint` when a signal stopped the run.
        self.interrupted: str | None = None

    @property
    def stage_names(self) -> list[str]:
        return self.net.stage_names

    @property
    def latent_stride(self) -> int:
        """How many pixels one latent pixel spans along each side."""
        return self.net.latent_stride

    @property
    def loss_network_name(self) -> str | None:
        """Which weights the perceptual term's network has, ``None`` without one."""
        return None if self.loss_network is None else self.loss_network.weights

    def forward(self, images: Tensor) -> Tensor:
        """The reconstruction (posterior mean decoded) of images in [-1, 1], unclamped."""
        return self.net(images).reconstruction

    @torch.no_grad()
    def reconstruct(self, images: Tensor, batch_size: int = 16) -> Tensor:
        """Reconstructions in [0, 1] (clamped) of images in [0, 1]: posterior mean, eval mode, chunks of ``batch_size``.

        Shape:
            - Input: ``(N, C, H, W)`` in [0, 1], on any device.
            - Output: ``(N, C, H, W)`` float32 on the task's device.
        """
        was_training = self.net.training
        self.net.eval()
        try:
            dtype = next(self.net.parameters()).dtype
            out = [((self.net(chunk.to(self.device, dtype) * 2 - 1).reconstruction.float() + 1) / 2).clamp(0, 1)
                   for chunk in images.split(batch_size)]
        finally:
            self.net.train(was_training)
        return torch.cat(out)

    def _perceptual(self, reconstruction: Tensor, images: Tensor) -> Tensor:
        network = self.loss_network
        if next(network.parameters()).device != images.device:
            network.to(images.device)
        with torch.autocast(images.device.type, enabled=False):  # VGG activations overflow float16
            ours = network(((reconstruction.float() + 1) / 2))
            with torch.no_grad():
                theirs = network(((images.float() + 1) / 2))
        return torch.stack([F.mse_loss(ours[name], theirs[name]) for name in VGG_LAYERS]).mean()

    def losses(self, images: Tensor) -> dict[str, Tensor]:
        """The loss terms for a batch in [-1, 1]; ``"total"`` is the weighted sum (see the class docstring)."""
        hp = self.hparams
        generator = torch.Generator(device=self.device)
        generator.manual_seed(hash((hp.noise_seed, self.global_step, self.global_rank)) & (2**62 - 1))
        out = self.net(images, sample_posterior=True, generator=generator)
        reconstruction = out.reconstruction.float()
        terms = {"l1": F.l1_loss(reconstruction, images.float()),
                 "kl": kl_divergence(out.mean.float(), out.logvar.float())}
        total = terms["l1"] + hp.kl_weight * terms["kl"] / images[0].numel()
        if hp.perceptual_weight > 0:
            terms["perceptual"] = self._perceptual(reconstruction, images)
            total = total + hp.perceptual_weight * terms["perceptual"]
        terms["total"] = total
        return terms

    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        size, channels = getattr(datamodule, "image_size", None), getattr(datamodule, "channels", None)
        if isinstance(size, int) and size % self.latent_stride:
            raise ValueError(f"image_size must be a multiple of the latent stride {self.latent_stride}; got {size}.")
        if isinstance(channels, int) and channels != self.hparams.channels:
            raise ValueError(f"the task has {self.hparams.channels} channels but the data has {channels}; "
                             f"build AutoencoderTask(channels={channels}).")

    def training_step(self, batch: Tensor | Sequence[Tensor], batch_idx: int) -> Tensor | None:
        images = batch[0] if isinstance(batch, (list, tuple)) else batch  # the data module serves [-1, 1]
        terms = self.losses(images)
        if not stop_if_not_finite(self, "autoencoder loss", terms["total"].detach()):
            return None  # Lightning skips the step: the weights stay those of the last good step
        self.log_dict({f"loss/{name}": value.detach() for name, value in terms.items()}, prog_bar=True)
        return terms["total"]

    def sample(self, images: Tensor | None = None) -> Tensor:
        """``input | reconstruction`` pairs, interleaved ``(2N, C, H, W)`` in [0, 1], for sample grids.

        Args:
            images: ``(N, C, H, W)`` in [0, 1]; default: the first ``num_fixed_samples`` held-out
                images of the trainer's datamodule.
        """
        if images is None:
            images = heldout_images(self, self.hparams.num_fixed_samples)
        images = images.to(self.device, torch.float32)
        return torch.stack([images, self.reconstruct(images)], dim=1).flatten(0, 1)

    def metric_samples(self, num: int, *, seed: int, batch_size: int, rank: int = 0, world_size: int = 1) -> Tensor:
        """This process's share of the first ``num`` held-out images, reconstructed (``seed`` unused)."""
        return self.reconstruct(heldout_images(self, num)[rank::world_size], batch_size)

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=self.hparams.lr)
