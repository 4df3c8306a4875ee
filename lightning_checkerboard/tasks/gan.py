"""``GANTask``: a DCGAN whose upsampling stages are one registry spec, trained with manual optimisation."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_checkerboard._lightning import pl
from lightning_checkerboard._validation import check_choice, check_number, check_unit_interval
from lightning_checkerboard.models.dcgan import DISCRIMINATOR_NORMS, DCGANDiscriminator, DCGANGenerator
from lightning_checkerboard.tasks._common import stop_if_not_finite

__all__ = ["GANTask", "LOSSES"]

LOSSES = ("nonsaturating", "hinge")


class GANTask(pl.LightningModule):
    """Train a DCGAN generator and discriminator; the generator's upsamplers come from the registry.

    Each training step updates the discriminator on a real batch and a generated one, then the
    generator, each with its own Adam optimiser (manual optimisation: ``toggle_optimizer →
    zero_grad → manual_backward → step → untoggle_optimizer``). Noise is drawn on ``self.device``;
    a fixed noise batch (a buffer, saved in checkpoints) makes sample grids comparable over time.
    A non-finite loss stops training and marks the task ``diverged`` (see :attr:`diverged`).

    With ``ema_decay > 0`` the task also keeps an exponential moving average of the generator's
    weights (:attr:`generator_ema`, as StyleGAN and BigGAN evaluate), updated after every generator
    step with decay ``min(ema_decay, (1 + k) / (10 + k))`` at iteration ``k`` so that it follows the
    fast early changes. :meth:`sample` and :meth:`metric_samples` then generate with the average; its
    BatchNorm statistics are recomputed for the averaged weights ("standing statistics", from a fixed
    noise set) whenever they changed, since the live generator's running statistics belong to other
    weights.

    Args:
        upsampler: one registered upsampler for every generator stage, or one per stage.
        image_size: 8 … 256, a power of two.
        channels: image channels.
        latent_dim: noise dimension.
        gen_channels: generator width before the output stage (DCGAN's ``ngf``).
        disc_channels: discriminator first-layer width (``ndf``).
        disc_first_stride: 1 or 2: the discriminator's first-layer stride.
        disc_first_kernel: the discriminator's first-layer kernel (``None``: 4 with stride 2, 3 with
            stride 1; 3 with stride 2 overlaps unevenly in the backward pass).
        disc_norm: the discriminator's normalisation: ``"batch"`` (DCGAN), ``"spectral"`` (SNGAN) or
            ``"none"``.
        loss: ``"nonsaturating"`` (DCGAN) or ``"hinge"``.
        lr_g: the generator's Adam learning rate.
        lr_d: the discriminator's Adam learning rate.
        betas: Adam betas.
        num_fixed_samples: size of the fixed noise batch for sample grids.
        fixed_noise_seed: seed of that batch (independent of the global seed).
        noise_seed: seed of the training noise; iteration ``k`` draws from ``(noise_seed, k)``, so
            a resumed run sees the noise an uninterrupted one would. Default: drawn from the
            global RNG (so ``seed_everything`` fixes it) and saved with the hyperparameters.
        upsampler_options: options for every stage (e.g. ``{"padding": "reflect"}``).
        ema_decay: decay of the generator's weight average in [0, 1); 0 evaluates the live generator.

    Raises:
        ValueError: bad sizes, an unknown upsampler, loss or ``disc_norm``, non-positive or NaN
            learning rates, an ``ema_decay`` outside [0, 1).

    Example:
        >>> task = GANTask("nearest_conv", image_size=16, gen_channels=8, disc_channels=8)
        >>> task.sample(4).shape
        torch.Size([4, 3, 16, 16])
    """

    #: A discriminator and a generator step per batch: Lightning's ``global_step`` counts both.
    optimizer_steps_per_iteration = 2

    def __init__(
        self,
        upsampler: str | Sequence[str] = "deconv",
        *,
        image_size: int = 32,
        channels: int = 3,
        latent_dim: int = 100,
        gen_channels: int = 64,
        disc_channels: int = 64,
        disc_first_stride: int = 2,
        disc_first_kernel: int | None = None,
        disc_norm: str = "batch",
        loss: str = "nonsaturating",
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        num_fixed_samples: int = 64,
        fixed_noise_seed: int = 1234,
        noise_seed: int | None = None,
        upsampler_options: dict[str, Any] | None = None,
        ema_decay: float = 0.0,
    ) -> None:
        super().__init__()
        check_unit_interval(ema_decay, "ema_decay")
        check_choice(disc_norm, "disc_norm", DISCRIMINATOR_NORMS)
        check_choice(loss, "loss", LOSSES)
        check_number(lr_g, "lr_g", minimum=0.0, strict_minimum=True)
        check_number(lr_d, "lr_d", minimum=0.0, strict_minimum=True)
        if not isinstance(betas, Sequence) or isinstance(betas, str) or len(betas) != 2:
            raise ValueError(f"betas must be a pair of numbers in [0, 1); got {betas!r}.")
        for index, beta in enumerate(betas):
            check_unit_interval(beta, f"betas[{index}]")
        if isinstance(upsampler, (list, tuple)):
            upsampler = ",".join(upsampler)  # a string keeps the saved hyperparameters readable
        if noise_seed is None:
            noise_seed = int(torch.randint(0, 2**31 - 1, ()))
        self.save_hyperparameters()
        self.automatic_optimization = False

        self.generator = DCGANGenerator(
            upsampler,
            image_size=image_size,
            channels=channels,
            latent_dim=latent_dim,
            base_channels=gen_channels,
            upsampler_options=upsampler_options,
        )
        self.discriminator = DCGANDiscriminator(
            image_size=image_size, channels=channels, base_channels=disc_channels, first_stride=disc_first_stride,
            first_kernel=disc_first_kernel, norm=disc_norm,
        )
        #: The generator's weight average (``None`` without ``ema_decay``); never trained directly.
        self.generator_ema: DCGANGenerator | None = None
        if ema_decay > 0:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        self._ema_statistics_step: int | None = None
        noise = torch.randn(num_fixed_samples, latent_dim, generator=torch.Generator().manual_seed(fixed_noise_seed))
        self.register_buffer("fixed_noise", noise)
        #: Why training stopped early, when a loss went non-finite; ``None`` otherwise.
        self.diverged: str | None = None
        #: Set by :class:`~lightning_checkerboard.callbacks.RunCheckpoint` when a signal stopped the run.
        self.interrupted: str | None = None

    @property
    def stage_names(self) -> list[str]:
        return self.generator.stage_names

    def forward(self, z: Tensor) -> Tensor:
        return self.generator(z)

    @property
    def eval_generator(self) -> DCGANGenerator:
        """The generator that samples and metrics use: the weight average when there is one."""
        if self.generator_ema is None:
            return self.generator
        self._refresh_ema_statistics()
        return self.generator_ema

    #: Noise batches (of the fixed batch's size) that estimate the average's BatchNorm statistics.
    _STANDING_BATCHES = 4

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._ema_statistics_step = None  # loaded weights: their statistics are recomputed when sampled

    @torch.no_grad()
    def _update_ema(self) -> None:
        iteration = self.global_step // self.optimizer_steps_per_iteration
        decay = min(self.hparams.ema_decay, (1 + iteration) / (10 + iteration))
        for average, live in zip(self.generator_ema.parameters(), self.generator.parameters()):
            average.lerp_(live.detach(), 1.0 - decay)
        self._ema_statistics_step = None

    @torch.no_grad()
    def _refresh_ema_statistics(self) -> None:
        if self._ema_statistics_step == self.global_step:
            return
        average = self.generator_ema
        norms = [m for m in average.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if norms:
            momenta = [m.momentum for m in norms]
            for m in norms:
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the standing batches
            was_training = average.training
            average.train()
            gen = torch.Generator().manual_seed(self.hparams.fixed_noise_seed + 1)
            for _ in range(self._STANDING_BATCHES):
                noise = torch.randn(self.hparams.num_fixed_samples, self.hparams.latent_dim, generator=gen)
                average(noise.to(self.device))
            average.train(was_training)
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum
        self._ema_statistics_step = self.global_step

    @torch.no_grad()
    def sample(self, num: int | None = None, *, noise: Tensor | None = None, seed: int | None = None) -> Tensor:
        """Generated images in [0, 1] from :attr:`eval_generator` in eval mode (BatchNorm running stats).

        Args:
            num: how many; default: the fixed noise batch.
            noise: explicit noise ``(N, latent_dim)`` instead.
            seed: seed for fresh noise (drawn on CPU, so the same on every device).
        """
        if noise is None:
            if num is None:
                noise = self.fixed_noise
            else:
                gen = torch.Generator().manual_seed(seed) if seed is not None else None
                noise = torch.randn(num, self.hparams.latent_dim, generator=gen)
        generator = self.eval_generator
        was_training = generator.training
        generator.eval()
        try:
            images = generator(noise.to(self.device))
        finally:
            generator.train(was_training)
        return ((images.float() + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def metric_samples(self, num: int, *, seed: int, batch_size: int, rank: int = 0, world_size: int = 1) -> Tensor:
        """This process's share of ``num`` images for the metrics, in [0, 1], the same on every call.

        The metric callbacks (:class:`~lightning_checkerboard.callbacks.ArtifactMetrics`,
        :class:`~lightning_checkerboard.callbacks.FIDCallback`) call this: image ``i`` comes from the
        ``i``-th row of noise drawn with ``seed``, and process ``rank`` makes rows
        ``rank, rank + world_size, …``, so every measurement scores the same latent points.
        """
        noise = torch.randn(num, self.hparams.latent_dim, generator=torch.Generator().manual_seed(seed))
        return torch.cat([self.sample(noise=chunk) for chunk in noise[rank::world_size].split(batch_size)])

    def _d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        if self.hparams.loss == "hinge":
            return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def _g_loss(self, fake_logits: Tensor) -> Tensor:
        if self.hparams.loss == "hinge":
            return -fake_logits.mean()
        return F.softplus(-fake_logits).mean()

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (list, tuple)) else batch
        opt_g, opt_d = self.optimizers()
        # Noise is a pure function of (noise_seed, iteration, rank): resuming reproduces it exactly.
        generator = torch.Generator(device=self.device)
        generator.manual_seed(hash((self.hparams.noise_seed, self.global_step, self.global_rank)) & (2**62 - 1))
        z = torch.randn(real.shape[0], self.hparams.latent_dim, device=self.device, generator=generator)
        # Generated once, before any toggling, so the generator step can backpropagate through it.
        fake = self.generator(z)

        self.toggle_optimizer(opt_d)
        d_loss = self._d_loss(self.discriminator(real), self.discriminator(fake.detach()))
        if not stop_if_not_finite(self, "discriminator loss", d_loss.detach()):
            self.untoggle_optimizer(opt_d)
            return  # no step: the weights stay those of the last good step
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)
        g_loss = self._g_loss(self.discriminator(fake))
        if not stop_if_not_finite(self, "generator loss", g_loss.detach()):
            self.untoggle_optimizer(opt_g)
            return
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        if self.generator_ema is not None:
            self._update_ema()

        self.log_dict({"loss/discriminator": d_loss.detach(), "loss/generator": g_loss.detach()}, prog_bar=True)

    def configure_optimizers(self):
        betas = tuple(self.hparams.betas)
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr_g, betas=betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr_d, betas=betas)
        return opt_g, opt_d
