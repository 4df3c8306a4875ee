"""Train a small KL autoencoder whose decoder upsamples with registry layers, and measure its reconstructions.

    python recipes/autoencoder.py --upsampler nearest_conv
    python recipes/autoencoder.py --upsampler deconv --seed 1
    python recipes/autoencoder.py --upsampler nearest_conv,nearest_conv,deconv   # one name per decoder stage

The network has the layout of a latent-diffusion VAE (diffusers' ``AutoencoderKL``, in plain torch):
an encoder of ResNet stages with stride-2 convolutions down to a 4-channel latent 8 times smaller per
side, and a decoder whose stages each end in one registered ×2 upsampler where diffusers has its
nearest-then-conv ``Upsample2D``. It trains on L1 plus a small KL term (and, with
``--perceptual-weight``, VGG-16 features). With the default ``--dataset photos`` the held-out images
are crops of whole photographs that training never sees (``--heldout-photos``; default astronaut and
stereo_motorcycle); any other dataset is measured on its usual held-out split. Logs the loss, PSNR
and SSIM (BT.601 luma) of the reconstructions, the checkerboard score of their error at every period
up to the latent stride and of the reconstructions themselves, spectral distance, SWD — each beside
the untrained model's, the baseline a trained decoder must beat — and input | reconstruction grids to
W&B (offline when not logged in or unreachable) or another logger, and leaves ``result.json`` in the
run directory for the leaderboard.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lightning_checkerboard.callbacks import ArtifactMetrics, ReconstructionMetrics, SampleGrid
from lightning_checkerboard.cli import (
    UsageError,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    recipe_main,
    recipe_parser,
    run_cli,
)
from lightning_checkerboard.data.photo_holdout import HeldoutPhotosDataModule
from lightning_checkerboard.data.photos import PHOTO_NAMES
from lightning_checkerboard.models import LossNetworkError, load_loss_network
from lightning_checkerboard.models.loss_network import LOSS_NETWORKS
from lightning_checkerboard.records import ResultRecord
from lightning_checkerboard.reporting import format_number
from lightning_checkerboard.tasks import AutoencoderTask
from lightning_checkerboard.training import AutoencoderConfig, Recipe, ResumedRun, RunParts, image_datamodule, upsampler_stages

#: Held-out images in the sample grids: input | reconstruction pairs, four per row.
GRID_SAMPLES = 8


class Autoencoder(Recipe[AutoencoderConfig]):
    """The autoencoder recipe: a KL autoencoder whose decoder stages come from the registry."""

    task = "autoencoder"
    run_name = "ae"
    config_class = AutoencoderConfig

    def build(self, config: AutoencoderConfig, resumed: ResumedRun | None) -> RunParts:
        widths = config.block_channel_list()
        stages = upsampler_stages(config, len(widths))
        stride = config.latent_stride()
        protocol: dict = {"latent_stride": stride}
        if config.dataset == "photos":
            datamodule = HeldoutPhotosDataModule(
                config.image_size, config.batch_size, config.data_seed, heldout_photos=config.heldout_photo_names(),
                heldout_samples=config.eval_samples, num_workers=config.num_workers)
            protocol["heldout_photos"] = ",".join(config.heldout_photo_names())
            held_out = f"held-out photographs {', '.join(config.heldout_photo_names())}"
        else:
            datamodule = image_datamodule(config, heldout_samples=config.eval_samples)
            held_out = "its held-out split"
        loss_network = None
        if config.perceptual_weight > 0:
            if config.loss_network == "random" and config.loss_network_weights is not None:
                raise UsageError("--loss-network-weights needs --loss-network auto or vgg16 (random draws its weights)")
            try:
                loss_network = load_loss_network(config.loss_network, weights_path=config.loss_network_weights,
                                                 seed=config.loss_network_seed)
            except LossNetworkError as err:
                raise UsageError(f"--loss-network {config.loss_network}: {err}") from None
            trained_with = resumed.record.protocol.get("loss_network") if resumed is not None else None
            if trained_with not in (None, loss_network.weights):
                raise UsageError(f"--resume: the run trained with loss network {trained_with!r}, this machine has "
                                 f"{loss_network.weights!r}; resume where the run started")
            protocol["loss_network"] = loss_network.weights

        def make_task() -> AutoencoderTask:
            return AutoencoderTask(stages, channels=datamodule.channels, block_channels=widths,
                                   loss_network=loss_network, noise_seed=config.seed,
                                   num_fixed_samples=min(GRID_SAMPLES, config.eval_samples),
                                   upsampler_options=config.upsampler_options(),
                                   **config.values("latent_channels", "layers_per_block", "kl_weight",
                                                   "perceptual_weight", "lr"))

        every, samples = config.eval_every, config.eval_samples
        latent = config.image_size // stride
        return RunParts(
            datamodule=datamodule,
            make_task=make_task,
            stages=stages,
            callbacks=[
                SampleGrid(every, nrow=8),  # four input | reconstruction pairs per row
                ArtifactMetrics(every, samples, batch_size=config.batch_size, gradient=False, quality=True),
                ReconstructionMetrics(every, samples, batch_size=config.batch_size),
            ],
            headline=f"autoencoder with {config.upsampler} (decoder stages {stages}) on {datamodule.name} at "
                     f"{config.image_size}² through a {config.latent_channels}×{latent}² latent (stride {stride}), "
                     f"measured on {held_out}",
            tags=[f"latent_stride:{stride}"],
            protocol=protocol,
        )

    def scores_line(self, record: ResultRecord) -> str:
        """``PSNR 24.10 dB, SSIM 0.7120 (untrained 11.20 dB, 0.0100), residual checkerboard …``."""
        m, base = record.metrics, record.baseline
        num = format_number
        return (f"PSNR {num(m.get('psnr'), 2, ' dB')}, SSIM {num(m.get('ssim'), 4)} "
                f"(untrained {num(base.get('psnr'), 2, ' dB')}, {num(base.get('ssim'), 4)}), residual checkerboard "
                f"{num(m.get('residual_checkerboard'), 3)} levels (< {num(m.get('residual_checkerboard_upper'), 2)} "
                f"at 95 %), output checkerboard {num(m.get('checkerboard'), 3)} levels (untrained "
                f"{num(base.get('checkerboard'), 3)})")


def build_parser() -> argparse.ArgumentParser:
    parser, add = recipe_parser(
        AutoencoderConfig, prog="recipes/autoencoder.py", description=__doc__.split("\n\n")[0], help={
            "image_size": "side of the crops: a multiple of the latent stride (2 ** stages) with at least 4 latent "
                          "pixels per side (32 for the default 3 stages)",
            "dataset": "photos (embedded; held out by whole photographs, see --heldout-photos) or another dataset "
                       "of recipes/gan.py (held out by its usual split)",
            "seed": "seed of the network, the posterior samples and the batch order",
            "eval_samples": "held-out images reconstructed and scored",
        })
    add("model", "block_channels", "comma-separated width of each stage, finest first; one stride-2 stage each "
        "(the latent stride is 2 ** stages)", metavar="WIDTHS")
    add("model", "latent_channels", "channels of the latent (Stable Diffusion's VAE: 4)", type=positive_int)
    add("model", "layers_per_block", "ResNet blocks per stage", type=positive_int)
    add("training", "lr", "learning rate (Adam)", type=positive_float)
    add("training", "kl_weight", "weight of the KL term against the per-element L1 (latent diffusion: 1e-6)",
        type=non_negative_float)
    add("training", "perceptual_weight", "weight of the VGG-16 feature loss (0: off)", type=non_negative_float)
    add("training", "loss_network", "with --perceptual-weight: auto (pretrained VGG-16 when it can be had, else a "
        "seeded random one), vgg16 (pretrained or an error) or random", choices=LOSS_NETWORKS)
    add("training", "loss_network_weights", "a VGG-16 state dict file (torchvision's keys) instead of torchvision's "
        "download; with --resume, give it again to use it", type=Path)
    add("training", "loss_network_seed", "seed of a random-weight VGG-16", type=non_negative_int)
    add("training", "heldout_photos", f"comma-separated photographs held out of photos (default: astronaut,"
        f"stereo_motorcycle); from {', '.join(PHOTO_NAMES)}")
    return parser


main = recipe_main(Autoencoder(), build_parser)


if __name__ == "__main__":
    sys.exit(run_cli(main))
