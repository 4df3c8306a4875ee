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

import pytorch_lightning as pl

from lightning_checkerboard import runs
from lightning_checkerboard.callbacks import ArtifactMetrics, FIDCallback, ResultRecorder, RunCheckpoint, SampleGrid
from lightning_checkerboard.cli import (
    UsageError,
    add_logging_args,
    add_trainer_args,
    non_negative_int,
    positive_float,
    positive_int,
    run_cli,
    unit_interval,
    upsampler_help,
)
from lightning_checkerboard.data import ImageDataModule
from lightning_checkerboard.models import num_stages_for
from lightning_checkerboard.models.dcgan import DISCRIMINATOR_NORMS
from lightning_checkerboard.records import ResultRecord
from lightning_checkerboard.tasks import GANTask
from lightning_checkerboard.upsamplers import create_upsampler, parse_upsampler_spec


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recipes/gan.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    model = parser.add_argument_group("model")
    model.add_argument("--upsampler", default="nearest_conv", help=upsampler_help())
    model.add_argument("--padding", choices=("zeros", "reflect"), default=None,
                       help="padding of the resize-conv upsamplers (default: the layer's own, zeros)")
    model.add_argument("--image-size", type=positive_int, default=32, help="8, 16, 32, 64, 128 or 256")
    model.add_argument("--gen-channels", type=positive_int, default=64, help="generator width (DCGAN ngf)")
    model.add_argument("--disc-channels", type=positive_int, default=64, help="discriminator width (DCGAN ndf)")
    model.add_argument("--disc-first-stride", type=int, choices=(1, 2), default=2,
                       help="stride of the discriminator's first layer (2 puts checkerboards into gradients)")
    model.add_argument("--disc-first-kernel", type=int, choices=(3, 4), default=None,
                       help="kernel of the discriminator's first layer (default 4 with stride 2, 3 with stride 1; "
                            "3 with stride 2 overlaps unevenly and checkers the gradient's energy)")
    model.add_argument("--disc-norm", choices=DISCRIMINATOR_NORMS, default="batch",
                       help="discriminator normalisation: batch (DCGAN), spectral (SNGAN: spectral norm, no BatchNorm) or none")
    model.add_argument("--latent-dim", type=positive_int, default=100)
    train = parser.add_argument_group("training")
    train.add_argument("--dataset", default="photos",
                       help="photos (embedded), digits, cifar10, mnist, fashion_mnist, celeba, hf:<repo>[:split], folder:<path>")
    train.add_argument("--corrupt", choices=("skip", "error"), default="skip",
                       help="unreadable images in folder:/hub data: skip and count them, or stop with an error")
    train.add_argument("--batch-size", type=positive_int, default=64)
    train.add_argument("--max-steps", type=positive_int, default=1000, help="training iterations (one D and one G update each)")
    train.add_argument("--seed", type=non_negative_int, default=0, help="seed of the model and the training noise")
    train.add_argument("--data-seed", type=non_negative_int, default=0, help="seed of the embedded data's crops and splits")
    train.add_argument("--loss", choices=("nonsaturating", "hinge"), default="nonsaturating")
    train.add_argument("--lr-g", type=positive_float, default=2e-4)
    train.add_argument("--lr-d", type=positive_float, default=2e-4)
    train.add_argument("--ema-decay", type=unit_interval, default=0.999,
                       help="decay of the generator's weight average that samples and metrics use (0: the live generator)")
    train.add_argument("--num-workers", type=non_negative_int, default=0, help="data-loader worker processes")
    metrics = parser.add_argument_group("metrics")
    metrics.add_argument("--eval-every", type=non_negative_int, default=250,
                         help="measure artifacts and save samples every N iterations (0: only at the end)")
    metrics.add_argument("--eval-samples", type=positive_int, default=256, help="generated images per measurement")
    metrics.add_argument("--fid", choices=("auto", "required", "off"), default="auto",
                         help="auto: FID when Inception weights can be had, else recorded as unavailable")
    metrics.add_argument("--fid-samples", type=positive_int, default=256)
    metrics.add_argument("--fid-weights", type=Path, default=None, help="Inception-v3 weights file (torch-fidelity's)")
    add_logging_args(parser)
    parser.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                        help="continue an interrupted run from its checkpoints/last.ckpt, with its recorded settings")
    add_trainer_args(parser)
    return parser


def _number(value: object, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "unavailable"


def _at_least(value: object, floor: float) -> object:
    return max(value, floor) if isinstance(value, (int, float)) else value


def _scores_line(record: ResultRecord) -> str:
    """``checkerboard score: 0.000 levels (< 2.62 at 95 %, ratio 0.0000), SWD 91.2 (untrained 310.4), …``."""
    metrics, baseline = record.metrics, record.baseline
    swd = f"SWD {_number(metrics.get('swd'), 1)}"
    if isinstance(baseline.get("swd"), (int, float)):
        swd += f" (untrained {baseline['swd']:.1f})"
    return (f"checkerboard score: {_number(metrics.get('checkerboard'), 3)} levels "
            f"(< {_number(_at_least(metrics.get('checkerboard_upper'), 0.01), 2)} at 95 %, "
            f"ratio {_number(metrics.get('checkerboard_ratio'), 4)}), {swd}, "
            f"spectral distance {_number(metrics.get('spectral_distance'), 3)}, FID {_number(metrics.get('fid'), 2)}")


# Each GAN update backpropagates through one network only, so DDP must expect unused parameters.
_GAN_STRATEGIES = {"ddp": "ddp_find_unused_parameters_true", "ddp_spawn": "ddp_spawn_find_unused_parameters_true"}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    resumed: ResultRecord | None = None
    if args.resume is not None:
        # Runs recorded before the weight average and the discriminator choice existed continue as they began.
        args, run_dir, resumed = runs.resume_settings(parser, args, path_keys=("output_dir", "fid_weights"),
                                                      legacy_defaults={"ema_decay": 0.0, "disc_norm": "batch"})
    options = {"padding": args.padding} if args.padding else {}

    # Everything that can be a user mistake is checked here, before any data is built or trained on.
    try:
        stages = parse_upsampler_spec(args.upsampler, num_stages_for(args.image_size))
        if args.disc_first_kernel == 4 and args.disc_first_stride == 1:
            raise UsageError("--disc-first-kernel 4 needs --disc-first-stride 2 (with stride 1 the first layer is 3×3)")
        for name in set(stages):  # options a stage's layer does not take fail now, not after data prep
            create_upsampler(name, 1, 1, **options)
        datamodule = ImageDataModule(
            dataset=args.dataset,
            image_size=args.image_size,
            batch_size=args.batch_size,
            seed=args.data_seed,
            num_workers=args.num_workers,
            heldout_samples=max(args.eval_samples, args.fid_samples if args.fid != "off" else 0),
            corrupt=args.corrupt,
        )
        if args.fid_weights is not None and not args.fid_weights.is_file():
            raise UsageError(f"--fid-weights {str(args.fid_weights)!r} is not a file")
        fid = FIDCallback(args.fid, args.fid_samples, weights_path=args.fid_weights, batch_size=args.batch_size)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as err:  # RuntimeError: --fid required
        raise UsageError(str(err)) from None
    if resumed is None:
        run_dir = runs.run_directory(args.output_dir, "gan", args.dataset, args.upsampler, args.seed)
    run_id = resumed.run_id if resumed is not None else run_dir.name.rsplit("-", 1)[-1]
    datamodule.prepare_data()
    datamodule.setup("fit")

    pl.seed_everything(args.seed, workers=True, verbose=False)
    task = GANTask(
        stages,
        image_size=args.image_size,
        channels=datamodule.channels,
        latent_dim=args.latent_dim,
        gen_channels=args.gen_channels,
        disc_channels=args.disc_channels,
        disc_first_stride=args.disc_first_stride,
        disc_first_kernel=args.disc_first_kernel,
        disc_norm=args.disc_norm,
        loss=args.loss,
        lr_g=args.lr_g,
        lr_d=args.lr_d,
        upsampler_options=options,
        ema_decay=args.ema_decay,
    )

    record = runs.start_record(resumed, run_id, "gan", datamodule, args, task.stage_names, options)
    tags = ["task:gan", f"dataset:{datamodule.name}", f"upsampler:{args.upsampler}",
            *{f"stage:{name}" for name in task.stage_names}]
    choice = runs.start_logging(args, run_dir, record, run_name=f"gan-{args.upsampler}-s{args.seed}", tags=tags)

    checkpoint = RunCheckpoint(run_dir / "checkpoints", every_n_steps=args.eval_every)
    callbacks = [
        SampleGrid(args.eval_every),
        ArtifactMetrics(args.eval_every, args.eval_samples, batch_size=args.batch_size),
        fid,
        checkpoint,
        ResultRecorder(record, args.batch_size),  # last: it collects what the others measured
    ]
    trainer = runs.build_trainer(
        args,
        max_steps=args.max_steps * GANTask.optimizer_steps_per_iteration,
        logger=choice.logger,
        callbacks=callbacks,
        run_dir=run_dir,
        strategy=_GAN_STRATEGIES.get(args.strategy, args.strategy),
    )
    runs.announce(f"run {run_id}: {args.upsampler} on {datamodule.name} at {args.image_size}², stages "
                  f"{task.stage_names}" + (" (resumed)" if resumed is not None else ""), run_dir, choice)
    runs.fit(trainer, task, datamodule, choice, ckpt_path=checkpoint.last_path if resumed is not None else None)

    if trainer.global_rank == 0:
        runs.report(record, run_dir, choice, _scores_line(record))
    return 0 if record.status == "finished" else 1


if __name__ == "__main__":
    sys.exit(run_cli(main))
