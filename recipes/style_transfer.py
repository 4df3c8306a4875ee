"""Train a fast style-transfer network whose upsampling layers come from the registry, and measure their artifacts.

    python recipes/style_transfer.py --upsampler nearest_conv
    python recipes/style_transfer.py --upsampler deconv --seed 1
    python recipes/style_transfer.py --upsampler deconv,nearest_conv --style path/to/painting.jpg

A Johnson et al. (2016) transformer network trained with a perceptual loss (content on VGG-16
relu2_2, style as Gram matrices on relu1_2 … relu4_3) on the embedded ``photos`` crops. Logs the
losses, content | stylised sample grids of held-out photos, and the checkerboard score with
per-period PNR of stylised held-out photos to W&B (offline when not logged in or unreachable) or
another logger, and leaves ``result.json`` in the run directory for the leaderboard.

Offline, without torchvision's cached VGG-16 weights, ``--loss-network auto`` (the default) trains
with a seeded random-weight VGG-16 and says so loudly; the record names the network used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lightning_checkerboard.callbacks import ArtifactMetrics, HeldoutLoss, SampleGrid
from lightning_checkerboard.cli import (
    UsageError,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    recipe_parser,
    recipe_main,
    run_cli,
)
from lightning_checkerboard.data import STYLE_IMAGES, load_style_image
from lightning_checkerboard.models import LossNetworkError, check_transformer_size, load_loss_network
from lightning_checkerboard.models.loss_network import LOSS_NETWORKS, VGG_LAYERS
from lightning_checkerboard.records import ResultRecord
from lightning_checkerboard.reporting import format_number
from lightning_checkerboard.tasks import StyleTransferTask
from lightning_checkerboard.tasks.style_transfer import MIN_STYLE_SIDE, check_style_side
from lightning_checkerboard.training import (
    Recipe,
    ResumedRun,
    RunParts,
    StyleTransferConfig,
    image_datamodule,
    upsampler_stages,
)


class StyleTransfer(Recipe[StyleTransferConfig]):
    """The fast style-transfer recipe: transformer-net upsamplers from the registry, perceptual loss."""

    task = "style_transfer"
    run_name = "style"
    config_class = StyleTransferConfig

    def build(self, config: StyleTransferConfig, resumed: ResumedRun | None) -> RunParts:
        check_transformer_size(config.image_size, "image_size")
        style_size = check_style_side(config.style_size or config.image_size, "style_size")
        if config.loss_network == "random" and config.loss_network_weights is not None:
            raise UsageError("--loss-network-weights needs --loss-network auto or vgg16 (random draws its weights)")
        stages = upsampler_stages(config, num_stages=2)
        # A resumed run takes its style image from its checkpoint: the file may be elsewhere by now.
        style_image = (resumed.checkpoint["state_dict"]["style_image"] if resumed is not None
                       else load_style_image(config.style, style_size))
        datamodule = image_datamodule(config, heldout_samples=config.eval_samples, channels=3)
        try:
            loss_network = load_loss_network(config.loss_network, weights_path=config.loss_network_weights,
                                             seed=config.loss_network_seed)
        except LossNetworkError as err:
            raise UsageError(f"--loss-network {config.loss_network}: {err}") from None
        trained_with = resumed.record.protocol.get("loss_network") if resumed is not None else None
        if trained_with not in (None, loss_network.weights):
            raise UsageError(f"--resume: the run trained with loss network {trained_with!r}, this machine has "
                             f"{loss_network.weights!r}; resume where the run started")

        def make_task() -> StyleTransferTask:
            return StyleTransferTask(stages, style_image=style_image, loss_network=loss_network,
                                     upsampler_options=config.upsampler_options(),
                                     **config.values("base_channels", "content_weight", "style_weight", "tv_weight",
                                                     "content_layer", "lr"))

        return RunParts(
            datamodule=datamodule,
            make_task=make_task,
            stages=stages,
            callbacks=[
                SampleGrid(config.eval_every, nrow=4),  # two content | stylised pairs per row
                ArtifactMetrics(config.eval_every, config.eval_samples, batch_size=config.batch_size, gradient=False,
                                quality=False),
                HeldoutLoss(config.eval_every, config.eval_samples, batch_size=config.batch_size),  # the quality number
            ],
            headline=f"style transfer with {config.upsampler} (stages {stages}) on {datamodule.name} at "
                     f"{config.image_size}², style {config.style!r}, loss network {loss_network.weights}",
            tags=[f"loss_network:{loss_network.weights}"],
            protocol={"loss_network": loss_network.weights},
            recorded={"style_size": style_size},
        )

    def scores_line(self, record: ResultRecord) -> str:
        metrics, num = record.metrics, format_number  # "unavailable" for a metric a diverged run never measured
        upper = metrics.get("checkerboard_upper")
        upper = max(upper, 0.01) if isinstance(upper, (int, float)) else upper
        return (f"checkerboard score of stylised held-out photos: {num(metrics.get('checkerboard'), 3)} "
                f"levels (< {num(upper, 2)} at 95 %, ratio {num(metrics.get('checkerboard_ratio'), 4)}), held-out "
                f"loss {num(metrics.get('heldout_loss'), 4)} (untrained {num(record.baseline.get('heldout_loss'), 4)})")


def build_parser() -> argparse.ArgumentParser:
    parser, add = recipe_parser(
        StyleTransferConfig, prog="recipes/style_transfer.py", description=__doc__.split("\n\n")[0],
        groups=["style and loss"], help={
            "image_size": "content crop side: a multiple of 4, at least 16",
            "dataset": "photos (embedded), hf:<repo>[:split] (e.g. a COCO mirror), folder:<path>, or another "
                       "dataset name of recipes/gan.py",
            "seed": "seed of the network and the batch order",
            "eval_samples": "held-out content images stylised and scored",
        })
    add("model", "base_channels", "transformer width (Johnson et al.: 32)", type=positive_int)
    add("style and loss", "style", f"an image file, or a bundled image: {', '.join(STYLE_IMAGES)}")
    add("style and loss", "style_size", f"style image side, at least {MIN_STYLE_SIDE} (default: --image-size)",
        type=positive_int)
    add("style and loss", "content_weight", "weight of the content loss", type=positive_float)
    add("style and loss", "style_weight", "weight of the style loss", type=positive_float)
    add("style and loss", "tv_weight", "total-variation weight; off by default because it hides the artifacts "
        "measured", type=non_negative_float)
    add("style and loss", "content_layer", "VGG-16 layer of the content loss", choices=tuple(VGG_LAYERS))
    add("style and loss", "loss_network", "auto: pretrained VGG-16 when it can be had, else a seeded random one "
        "(with a warning); vgg16: pretrained or an error; random: seeded random weights", choices=LOSS_NETWORKS)
    add("style and loss", "loss_network_weights", "a VGG-16 state dict file (torchvision's keys) instead of "
        "torchvision's download; with --resume, give it again to use it", type=Path)
    add("style and loss", "loss_network_seed", "seed of a random-weight VGG-16", type=non_negative_int)
    add("training", "lr", "learning rate (Adam)", type=positive_float)
    return parser


main = recipe_main(StyleTransfer(), build_parser)


if __name__ == "__main__":
    sys.exit(run_cli(main))
