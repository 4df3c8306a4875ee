"""Train a DCGAN whose upsampling layers come from the registry, and measure their artifacts.

    python recipes/gan.py --upsampler nearest_conv
    python recipes/gan.py --upsampler deconv_k3 --seed 1
    python recipes/gan.py --upsampler nearest_conv,nearest_conv,deconv_k3   # one name per stage

Logs losses, the checkerboard score (with per-period PNR and the contrast-free ratio), spectral
distance to held-out real images, the discriminator's gradient checkerboard score, FID and sample
grids to W&B (offline when not logged in or unreachable) or another logger, and leaves
``result.json`` in the run directory for the leaderboard.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lightning_checkerboard.callbacks import ArtifactMetrics, FIDCallback, SampleGrid
from lightning_checkerboard.cli import (
    UsageError,
    positive_float,
    positive_int,
    recipe_parser,
    recipe_main,
    run_cli,
    unit_interval,
)
from lightning_checkerboard.metrics.fid import FID_POLICIES, InceptionWeightsError
from lightning_checkerboard.models import num_stages_for
from lightning_checkerboard.models.dcgan import DISCRIMINATOR_NORMS
from lightning_checkerboard.records import ResultRecord
from lightning_checkerboard.reporting import format_number
from lightning_checkerboard.tasks import GANTask
from lightning_checkerboard.tasks.gan import LOSSES
from lightning_checkerboard.training import (
    GANConfig,
    Recipe,
    ResumedRun,
    RunParts,
    image_datamodule,
    process_count,
    upsampler_stages,
)
from lightning_checkerboard.training.config import DISC_FIRST_KERNELS, DISC_FIRST_STRIDES, MAX_LATENT_DIM

# Each GAN update backpropagates through one network only, so DDP must expect unused parameters.
_GAN_STRATEGIES = {"ddp": "ddp_find_unused_parameters_true", "ddp_spawn": "ddp_spawn_find_unused_parameters_true"}


def _gan_strategy(config: GANConfig) -> str:
    """The strategy the GAN trains with: DDP that expects unused parameters wherever DDP is chosen,
    including ``auto`` on more than one process."""
    if config.strategy == "auto" and process_count(config) > 1:
        return _GAN_STRATEGIES["ddp"]
    return _GAN_STRATEGIES.get(config.strategy, config.strategy)


def _at_least(value: object, floor: float) -> object:
    return max(value, floor) if isinstance(value, (int, float)) else value


class GAN(Recipe[GANConfig]):
    """The DCGAN recipe: generator upsamplers from the registry, artifact metrics, SWD and FID."""

    task = "gan"
    config_class = GANConfig

    def build(self, config: GANConfig, resumed: ResumedRun | None) -> RunParts:
        stages = upsampler_stages(config, num_stages_for(config.image_size))
        if config.disc_first_kernel == 4 and config.disc_first_stride == 1:
            raise UsageError("--disc-first-kernel 4 needs --disc-first-stride 2 (with stride 1 the first layer is 3×3)")
        datamodule = image_datamodule(config, heldout_samples=max(config.eval_samples,
                                                                  config.fid_samples if config.fid != "off" else 0))
        if config.fid_weights is not None and not config.fid_weights.is_file():
            raise UsageError(f"--fid-weights {str(config.fid_weights)!r} is not a file")
        try:
            fid = FIDCallback(config.fid, config.fid_samples, weights_path=config.fid_weights,
                              batch_size=config.batch_size)
        except RuntimeError as err:  # --fid required without weights
            raise UsageError(str(err)) from None
        except InceptionWeightsError as err:  # a file that is not the extractor's weights, read as data
            flag = "--fid-weights" if config.fid_weights is not None else f"--fid {config.fid}"
            raise UsageError(f"{flag}: {err}") from None

        def make_task() -> GANTask:
            return GANTask(stages, channels=datamodule.channels, upsampler_options=config.upsampler_options(),
                           **config.values("image_size", "latent_dim", "gen_channels", "disc_channels",
                                           "disc_first_stride", "disc_first_kernel", "disc_norm", "loss", "lr_g",
                                           "lr_d", "ema_decay"))

        return RunParts(
            datamodule=datamodule,
            make_task=make_task,
            stages=stages,
            callbacks=[
                SampleGrid(config.eval_every),
                ArtifactMetrics(config.eval_every, config.eval_samples, batch_size=config.batch_size),
                fid,
            ],
            headline=f"{config.upsampler} on {datamodule.name} at {config.image_size}², stages {stages}",
            strategy=_gan_strategy(config),
        )

    def scores_line(self, record: ResultRecord) -> str:
        """``checkerboard score: 0.000 levels (< 14.35 at 95 %; period 2 < 0.80, ratio 0.0000), SWD 82.6 …``.

        The total bound at 32² is mostly period 8, next to DC; the classic checkerboard's own bound follows.
        """
        metrics, baseline = record.metrics, record.baseline
        swd = f"SWD {format_number(metrics.get('swd'), 1)}"
        if isinstance(baseline.get("swd"), (int, float)):
            swd += f" (untrained {baseline['swd']:.1f})"
        period_2 = metrics.get("upper_period_2")
        period_2 = (f"; period 2 < {format_number(_at_least(period_2, 0.01), 2)}"
                    if isinstance(period_2, (int, float)) else "")
        return (f"checkerboard score: {format_number(metrics.get('checkerboard'), 3)} levels "
                f"(< {format_number(_at_least(metrics.get('checkerboard_upper'), 0.01), 2)} at 95 %{period_2}, "
                f"ratio {format_number(metrics.get('checkerboard_ratio'), 4)}), {swd}, "
                f"spectral distance {format_number(metrics.get('spectral_distance'), 3)}, "
                f"FID {format_number(metrics.get('fid'), 2)}")


def build_parser() -> argparse.ArgumentParser:
    parser, add = recipe_parser(GANConfig, prog="recipes/gan.py", description=__doc__.split("\n\n")[0], help={
        "image_size": "8, 16, 32, 64, 128 or 256 (one upsampling stage per doubling from 4×4)",
        "max_steps": "training iterations (one D and one G update each)",
        "eval_samples": "generated images per measurement",
    })
    add("model", "gen_channels", "generator width (DCGAN ngf)", type=positive_int)
    add("model", "disc_channels", "discriminator width (DCGAN ndf)", type=positive_int)
    add("model", "disc_first_stride", "stride of the discriminator's first layer (2 puts checkerboards into "
        "gradients)", type=int, choices=DISC_FIRST_STRIDES)
    add("model", "disc_first_kernel", "kernel of the discriminator's first layer (default 4 with stride 2, 3 with "
        "stride 1; 3 with stride 2 overlaps unevenly and checkers the gradient's energy)", type=int,
        choices=DISC_FIRST_KERNELS)
    add("model", "disc_norm", "discriminator normalisation: batch (DCGAN), spectral (SNGAN: spectral norm, no "
        "BatchNorm) or none", choices=DISCRIMINATOR_NORMS)
    add("model", "latent_dim", f"length of the generator's noise vector (at most {MAX_LATENT_DIM})", type=positive_int)
    add("training", "loss", "GAN loss: nonsaturating (DCGAN's) or hinge", choices=LOSSES)
    add("training", "lr_g", "generator learning rate (Adam)", type=positive_float)
    add("training", "lr_d", "discriminator learning rate (Adam)", type=positive_float)
    add("training", "ema_decay", "decay of the generator's weight average that samples and metrics use "
        "(0: the live generator)", type=unit_interval)
    add("metrics", "fid", "auto: FID when Inception weights can be had, else recorded as unavailable; "
        "required: an error without them; off: no FID", choices=FID_POLICIES)
    add("metrics", "fid_samples", "generated images per FID", type=positive_int)
    add("metrics", "fid_weights", "Inception-v3 weights file (torch-fidelity's; default: found or downloaded); read "
        "as data, never unpickled as objects; with --resume, give it again to use it", type=Path)
    return parser


main = recipe_main(GAN(), build_parser)


if __name__ == "__main__":
    sys.exit(run_cli(main))
