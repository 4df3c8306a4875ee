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
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch

from lightning_checkerboard import runs
from lightning_checkerboard.callbacks import ArtifactMetrics, HeldoutLoss, ResultRecorder, RunCheckpoint, SampleGrid
from lightning_checkerboard.cli import (
    UsageError,
    add_logging_args,
    add_trainer_args,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    run_cli,
    upsampler_help,
)
from lightning_checkerboard.data import STYLE_IMAGES, ImageDataModule, load_style_image
from lightning_checkerboard.models import LossNetworkError, check_transformer_size, load_loss_network
from lightning_checkerboard.models.loss_network import LOSS_NETWORKS, VGG_LAYERS
from lightning_checkerboard.records import ResultRecord
from lightning_checkerboard.tasks import StyleTransferTask
from lightning_checkerboard.tasks.style_transfer import MIN_STYLE_SIDE, check_style_side
from lightning_checkerboard.upsamplers import create_upsampler, parse_upsampler_spec

DEFAULT_STYLE = "immunohistochemistry"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recipes/style_transfer.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    model = parser.add_argument_group("model")
    model.add_argument("--upsampler", default="nearest_conv", help=upsampler_help() + " (two stages)")
    model.add_argument("--padding", choices=("zeros", "reflect"), default=None,
                       help="padding of the resize-conv upsamplers (default: the layer's own, zeros)")
    model.add_argument("--image-size", type=positive_int, default=128, help="content crop side: a multiple of 4, at least 16")
    model.add_argument("--base-channels", type=positive_int, default=32, help="transformer width (Johnson et al.: 32)")
    style = parser.add_argument_group("style and loss")
    style.add_argument("--style", default=DEFAULT_STYLE,
                       help=f"an image file, or a bundled image: {', '.join(STYLE_IMAGES)}")
    style.add_argument("--style-size", type=positive_int, default=None,
                       help=f"style image side, at least {MIN_STYLE_SIDE} (default: --image-size)")
    style.add_argument("--content-weight", type=positive_float, default=1.0)
    style.add_argument("--style-weight", type=positive_float, default=1.0)
    style.add_argument("--tv-weight", type=non_negative_float, default=0.0,
                       help="total-variation weight; off by default because it hides the artifacts measured")
    style.add_argument("--content-layer", choices=tuple(VGG_LAYERS), default="relu2_2")
    style.add_argument("--loss-network", choices=LOSS_NETWORKS, default="auto",
                       help="auto: pretrained VGG-16 when it can be had, else a seeded random one (with a warning); "
                            "vgg16: pretrained or an error; random: seeded random weights")
    style.add_argument("--loss-network-weights", type=Path, default=None,
                       help="a VGG-16 state dict file (torchvision's keys) instead of torchvision's download")
    style.add_argument("--loss-network-seed", type=non_negative_int, default=0, help="seed of a random-weight VGG-16")
    train = parser.add_argument_group("training")
    train.add_argument("--content-dataset", default="photos",
                       help="photos (embedded), hf:<repo>[:split] (e.g. a COCO mirror), folder:<path>, or another "
                            "dataset name of recipes/gan.py")
    train.add_argument("--corrupt", choices=("skip", "error"), default="skip",
                       help="unreadable images in folder:/hub data: skip and count them, or stop with an error")
    train.add_argument("--batch-size", type=positive_int, default=4)
    train.add_argument("--max-steps", type=positive_int, default=200, help="training iterations")
    train.add_argument("--lr", type=positive_float, default=1e-3)
    train.add_argument("--seed", type=non_negative_int, default=0, help="seed of the network and the batch order")
    train.add_argument("--data-seed", type=non_negative_int, default=0, help="seed of the embedded data's crops and splits")
    train.add_argument("--num-workers", type=non_negative_int, default=0, help="data-loader worker processes")
    metrics = parser.add_argument_group("metrics")
    metrics.add_argument("--eval-every", type=non_negative_int, default=100,
                         help="measure artifacts and save samples every N iterations (0: only at the end)")
    metrics.add_argument("--eval-samples", type=positive_int, default=64, help="held-out content images stylised and scored")
    add_logging_args(parser)
    parser.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                        help="continue an interrupted run from its checkpoints/last.ckpt, with its recorded settings")
    add_trainer_args(parser)
    return parser


def _loss_network(args: argparse.Namespace):
    """The loss network the flags ask for; its fallback warning is printed as one line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        network = load_loss_network(args.loss_network, weights_path=args.loss_network_weights,
                                    seed=args.loss_network_seed)
    for warning in caught:
        runs.say(f"WARNING: {warning.message}", file=sys.stderr)
    return network


def _checkpoint_style_image(run_dir: Path):
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    return checkpoint["state_dict"]["style_image"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    resumed: ResultRecord | None = None
    if args.resume is not None:
        args, run_dir, resumed = runs.resume_settings(parser, args, path_keys=("output_dir", "loss_network_weights"))
    options = {"padding": args.padding} if args.padding else {}

    # Everything that can be a user mistake is checked here, before any data is built or trained on.
    try:
        check_transformer_size(args.image_size, "--image-size")
        style_size = check_style_side(args.style_size or args.image_size, "--style-size")
        if args.loss_network == "random" and args.loss_network_weights is not None:
            raise UsageError("--loss-network-weights needs --loss-network auto or vgg16 (random draws its weights)")
        stages = parse_upsampler_spec(args.upsampler, 2)
        for name in set(stages):
            create_upsampler(name, 1, 1, **options)
        # A resumed run takes its style image from its checkpoint: the file may be elsewhere by now.
        style_image = (_checkpoint_style_image(run_dir) if resumed is not None
                       else load_style_image(args.style, style_size))
        datamodule = ImageDataModule(
            dataset=args.content_dataset,
            image_size=args.image_size,
            batch_size=args.batch_size,
            seed=args.data_seed,
            num_workers=args.num_workers,
            channels=3,
            heldout_samples=args.eval_samples,
            corrupt=args.corrupt,
        )
        loss_network = _loss_network(args)
    except (ValueError, TypeError, LossNetworkError) as err:
        raise UsageError(str(err)) from None
    if resumed is not None and resumed.protocol.get("loss_network") not in (None, loss_network.weights):
        raise UsageError(f"--resume: the run trained with loss network {resumed.protocol['loss_network']!r}, "
                         f"this machine has {loss_network.weights!r}; resume where the run started")
    if resumed is None:
        run_dir = runs.run_directory(args.output_dir, "style_transfer", args.content_dataset, args.upsampler, args.seed)
    run_id = resumed.run_id if resumed is not None else run_dir.name.rsplit("-", 1)[-1]
    datamodule.prepare_data()
    datamodule.setup("fit")

    pl.seed_everything(args.seed, workers=True, verbose=False)
    task = StyleTransferTask(
        stages,
        style_image=style_image,
        loss_network=loss_network,
        base_channels=args.base_channels,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        content_layer=args.content_layer,
        lr=args.lr,
        upsampler_options=options,
    )

    record = runs.start_record(resumed, run_id, "style_transfer", datamodule, args, task.stage_names, options,
                               config_extra={"style_size": style_size}, loss_network=task.loss_network_name)
    tags = ["task:style_transfer", f"dataset:{datamodule.name}", f"upsampler:{args.upsampler}",
            f"loss_network:{task.loss_network_name}", *{f"stage:{name}" for name in task.stage_names}]
    choice = runs.start_logging(args, run_dir, record, run_name=f"style-{args.upsampler}-s{args.seed}", tags=tags)

    checkpoint = RunCheckpoint(run_dir / "checkpoints", every_n_steps=args.eval_every)
    callbacks = [
        SampleGrid(args.eval_every, nrow=4),  # two content | stylised pairs per row
        ArtifactMetrics(args.eval_every, args.eval_samples, batch_size=args.batch_size, gradient=False, quality=False),
        HeldoutLoss(args.eval_every, args.eval_samples, batch_size=args.batch_size),  # the quality number
        checkpoint,
        ResultRecorder(record, args.batch_size),  # last: it collects what the others measured
    ]
    trainer = runs.build_trainer(args, max_steps=args.max_steps, logger=choice.logger, callbacks=callbacks,
                                 run_dir=run_dir)
    runs.announce(f"run {run_id}: style transfer with {args.upsampler} (stages {task.stage_names}) on "
                  f"{datamodule.name} at {args.image_size}², style {args.style!r}, loss network "
                  f"{task.loss_network_name}" + (" (resumed)" if resumed is not None else ""), run_dir, choice)
    runs.fit(trainer, task, datamodule, choice, ckpt_path=checkpoint.last_path if resumed is not None else None)

    if trainer.global_rank == 0:
        metrics = record.metrics
        runs.report(record, run_dir, choice,
                    f"checkerboard score of stylised held-out photos: {metrics.get('checkerboard', float('nan')):.3f} "
                    f"levels (< {max(metrics.get('checkerboard_upper', float('nan')), 0.01):.2f} at 95 %, ratio "
                    f"{metrics.get('checkerboard_ratio', float('nan')):.4f}), held-out loss "
                    f"{metrics.get('heldout_loss', float('nan')):.4f} "
                    f"(untrained {record.baseline.get('heldout_loss', float('nan')):.4f})")
    return 0 if record.status == "finished" else 1


if __name__ == "__main__":
    sys.exit(run_cli(main))
