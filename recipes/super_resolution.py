"""Train an ESPCN-style super-resolution network whose upsampling layers come from the registry, and measure them.

    python recipes/super_resolution.py --upsampler pixel_shuffle_icnr
    python recipes/super_resolution.py --upsampler deconv --scale 4 --seed 1
    python recipes/super_resolution.py --upsampler nearest_conv,pixel_shuffle --scale 4   # one name per stage

High-resolution crops are downscaled on the fly (antialiased bicubic) and the network learns to
undo it: features at the low resolution, then one registered ×2 upsampler per doubling, the last
one painting the image; by default it predicts a correction to the bicubic interpolation. With the
default ``--dataset photos`` the held-out images are crops of whole photographs that training never
sees (``--heldout-photos``; default astronaut and stereo_motorcycle); any other dataset is measured
on its usual held-out split. Logs the loss, PSNR and SSIM (BT.601 luma, a border of ``scale``
pixels cropped) beside the bicubic baseline's, the checkerboard score of the outputs and of their
error, spectral distance, SWD, and bicubic | output | target grids to W&B (offline when not logged
in or unreachable) or another logger, and leaves ``result.json`` in the run directory for the
leaderboard.
"""

from __future__ import annotations

import argparse
import sys

from lightning_checkerboard.callbacks import ArtifactMetrics, FidelityMetrics, SampleGrid
from lightning_checkerboard.callbacks.fidelity import min_image_size
from lightning_checkerboard.cli import positive_float, positive_int, recipe_main, recipe_parser, run_cli
from lightning_checkerboard.data.photo_holdout import HeldoutPhotosDataModule
from lightning_checkerboard.data.photos import PHOTO_NAMES
from lightning_checkerboard.models.super_resolution import ACTIVATIONS, SUPPORTED_SCALES, num_stages_for_scale
from lightning_checkerboard.records import ResultRecord
from lightning_checkerboard.reporting import format_number
from lightning_checkerboard.tasks import SuperResolutionTask
from lightning_checkerboard.tasks.super_resolution import SR_LOSSES
from lightning_checkerboard.training import Recipe, ResumedRun, RunParts, SuperResolutionConfig, image_datamodule, upsampler_stages

#: Held-out images in the sample grids: bicubic | output | target triplets, two per row.
GRID_SAMPLES = 8


class SuperResolution(Recipe[SuperResolutionConfig]):
    """The super-resolution recipe: ESPCN-style network, registry upsamplers, fidelity against bicubic."""

    task = "super_resolution"
    run_name = "sr"
    config_class = SuperResolutionConfig

    def build(self, config: SuperResolutionConfig, resumed: ResumedRun | None) -> RunParts:
        stages = upsampler_stages(config, num_stages_for_scale(config.scale))
        if config.dataset == "photos":
            datamodule = HeldoutPhotosDataModule(
                config.image_size, config.batch_size, config.data_seed, heldout_photos=config.heldout_photo_names(),
                heldout_samples=config.eval_samples, num_workers=config.num_workers)
            protocol = {"scale": config.scale, "heldout_photos": ",".join(config.heldout_photo_names())}
            held_out = f"held-out photographs {', '.join(config.heldout_photo_names())}"
        else:
            datamodule = image_datamodule(config, heldout_samples=config.eval_samples)
            protocol, held_out = {"scale": config.scale}, "its held-out split"

        def make_task() -> SuperResolutionTask:
            return SuperResolutionTask(stages, channels=datamodule.channels, upsampler_options=config.upsampler_options(),
                                       num_fixed_samples=min(GRID_SAMPLES, config.eval_samples),
                                       **config.values("scale", "features", "hidden_channels", "activation",
                                                       "residual", "loss", "lr"))

        every, samples = config.eval_every, config.eval_samples
        return RunParts(
            datamodule=datamodule,
            make_task=make_task,
            stages=stages,
            callbacks=[
                SampleGrid(every, nrow=6),  # two bicubic | output | target triplets per row
                ArtifactMetrics(every, samples, batch_size=config.batch_size, gradient=False, quality=True),
                FidelityMetrics(every, samples, batch_size=config.batch_size),
            ],
            headline=f"×{config.scale} super-resolution with {config.upsampler} (stages {stages}) on "
                     f"{datamodule.name} at {config.image_size}² from {config.image_size // config.scale}², "
                     f"measured on {held_out}",
            tags=[f"scale:{config.scale}"],
            protocol=protocol,
        )

    def scores_line(self, record: ResultRecord) -> str:
        """``PSNR 32.29 dB, SSIM 0.9120 (bicubic 30.69 dB, 0.8890; untrained 28.10 dB), residual checkerboard …``."""
        m, base = record.metrics, record.baseline
        num = format_number
        return (f"PSNR {num(m.get('psnr'), 2, ' dB')}, SSIM {num(m.get('ssim'), 4)} "
                f"(bicubic {num(m.get('psnr_bicubic'), 2, ' dB')}, {num(m.get('ssim_bicubic'), 4)}; "
                f"untrained {num(base.get('psnr'), 2, ' dB')}), residual checkerboard "
                f"{num(m.get('residual_checkerboard'), 3)} levels (< "
                f"{num(m.get('residual_checkerboard_upper'), 2)} at 95 %), output checkerboard "
                f"{num(m.get('checkerboard'), 3)} levels (untrained {num(base.get('checkerboard'), 3)})")


def build_parser() -> argparse.ArgumentParser:
    parser, add = recipe_parser(
        SuperResolutionConfig, prog="recipes/super_resolution.py", description=__doc__.split("\n\n")[0], help={
            "image_size": f"side of the high-resolution crops: a multiple of --scale (at least {min_image_size(2)} for "
                          f"×2, {min_image_size(4)} for ×4)",
            "dataset": "photos (embedded; held out by whole photographs, see --heldout-photos) or another dataset "
                       "of recipes/gan.py (held out by its usual split)",
            "seed": "seed of the network and the batch order",
            "eval_samples": "held-out images degraded, super-resolved and scored",
        })
    add("model", "scale", f"super-resolution factor: {', '.join(map(str, SUPPORTED_SCALES))} (one ×2 upsampling "
        "stage per doubling)", type=positive_int, metavar="SCALE")
    add("model", "features", "width of the 5×5 feature layer (ESPCN: 64)", type=positive_int)
    add("model", "hidden_channels", "width of the 3×3 layer and between stages (ESPCN: 32)", type=positive_int)
    add("model", "activation", "hidden activation (ESPCN: tanh)", choices=ACTIVATIONS)
    add("model", "residual", "predict a correction to the bicubic interpolation (--no-residual: the whole image)",
        action=argparse.BooleanOptionalAction)
    add("training", "loss", "pixel loss: l1 (EDSR) or l2 (ESPCN)", choices=SR_LOSSES)
    add("training", "lr", "learning rate (Adam)", type=positive_float)
    add("training", "heldout_photos", f"comma-separated photographs held out of photos (default: astronaut,"
        f"stereo_motorcycle); from {', '.join(PHOTO_NAMES)}")
    return parser


main = recipe_main(SuperResolution(), build_parser)


if __name__ == "__main__":
    sys.exit(run_cli(main))
