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
import os
import sys
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only

from lightning_checkerboard import __version__
from lightning_checkerboard.callbacks import ArtifactMetrics, FIDCallback, ResultRecorder, RunCheckpoint, SampleGrid
from lightning_checkerboard.cli import (
    UsageError,
    add_logging_args,
    add_trainer_args,
    make_run_dir,
    new_run_id,
    non_negative_int,
    parse_devices,
    positive_float,
    positive_int,
    run_cli,
    upsampler_help,
)
from lightning_checkerboard.data import ImageDataModule
from lightning_checkerboard.loggers import build_logger
from lightning_checkerboard.models import num_stages_for
from lightning_checkerboard.records import RecordError, ResultRecord, git_revision, read_record
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


# Lightning's DDP launcher starts the other ranks by running this script again; they find the run
# directory chosen by rank zero here instead of making their own.
_RUN_DIR_ENV = "LIGHTNING_CHECKERBOARD_RUN_DIR"
# Each GAN update backpropagates through one network only, so DDP must expect unused parameters.
_GAN_STRATEGIES = {"ddp": "ddp_find_unused_parameters_true", "ddp_spawn": "ddp_spawn_find_unused_parameters_true"}


def _resume_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[argparse.Namespace, Path, ResultRecord]:
    """The recorded settings, run directory and record of the run ``--resume`` names."""
    changed = sorted(k for k, v in vars(args).items() if k != "resume" and v != parser.get_default(k))
    if changed:
        raise UsageError(
            "--resume continues a run with its recorded settings; drop "
            + ", ".join("--" + k.replace("_", "-") for k in changed)
        )
    run_dir = args.resume
    try:
        record = read_record(run_dir)
    except RecordError as err:
        raise UsageError(f"--resume: {err}") from None
    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        raise UsageError(f"--resume: {run_dir} has no checkpoints/last.ckpt to continue from")
    if record.status == "finished":
        raise UsageError(f"--resume: the run in {run_dir} already finished")
    recorded = dict(vars(args))
    recorded.update({k: v for k, v in record.config.items() if k in recorded})
    for key in ("output_dir", "fid_weights"):
        if recorded[key] is not None:
            recorded[key] = Path(recorded[key])
    recorded["resume"] = run_dir
    return argparse.Namespace(**recorded), run_dir, record


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    resumed: ResultRecord | None = None
    if args.resume is not None:
        args, run_dir, resumed = _resume_settings(parser, args)
    options = {"padding": args.padding} if args.padding else {}

    # Everything that can be a user mistake is checked here, before any data is built or trained on.
    try:
        stages = parse_upsampler_spec(args.upsampler, num_stages_for(args.image_size))
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
        if rank_zero_only.rank != 0 and os.environ.get(_RUN_DIR_ENV):
            run_dir = Path(os.environ[_RUN_DIR_ENV])
        else:
            run_dir = make_run_dir(args.output_dir, "gan", args.dataset, args.upsampler, args.seed, new_run_id())
            os.environ[_RUN_DIR_ENV] = str(run_dir)
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
        loss=args.loss,
        lr_g=args.lr_g,
        lr_d=args.lr_d,
        upsampler_options=options,
    )

    tags = ["task:gan", f"dataset:{datamodule.name}", f"upsampler:{args.upsampler}",
            *{f"stage:{name}" for name in task.stage_names}, *filter(None, args.tags.split(","))]
    choice = build_logger(args.logger, run_dir, run_name=f"gan-{args.upsampler}-s{args.seed}",
                          project=args.wandb_project, entity=args.wandb_entity, tags=tags, run_id=run_id)
    config = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    config.update(stages=task.stage_names, package_version=__version__)
    config.pop("resume")
    if resumed is not None:
        record = resumed
        record.status, record.message, record.finished_at = "running", "", None
    else:
        record = ResultRecord(
            run_id=run_id,
            task="gan",
            status="running",
            dataset=datamodule.name,
            dataset_fingerprint=datamodule.fingerprint,
            image_size=args.image_size,
            upsampler=args.upsampler,
            upsampler_stages=task.stage_names,
            upsampler_options=options,
            seed=args.seed,
            max_steps=args.max_steps,
            config=config,
            package_version=__version__,
            git_revision=git_revision(),
        )
    if choice.logger:
        choice.logger.log_hyperparams(config)
        if choice.wandb_mode and rank_zero_only.rank == 0:
            experiment = choice.logger.experiment
            record.wandb = {"mode": choice.wandb_mode, "path": getattr(experiment, "path", None),
                            "url": getattr(experiment, "url", None)}

    checkpoint = RunCheckpoint(run_dir / "checkpoints", every_n_steps=args.eval_every)
    callbacks = [
        SampleGrid(args.eval_every),
        ArtifactMetrics(args.eval_every, args.eval_samples, batch_size=args.batch_size),
        fid,
        checkpoint,
        ResultRecorder(record, args.batch_size),  # last: it collects what the others measured
    ]
    trainer = pl.Trainer(
        max_steps=args.max_steps * GANTask.optimizer_steps_per_iteration,
        accelerator=args.accelerator,
        devices=parse_devices(args.devices),
        num_nodes=args.num_nodes,
        strategy=_GAN_STRATEGIES.get(args.strategy, args.strategy),
        precision=args.precision,
        logger=choice.logger,
        callbacks=callbacks,
        default_root_dir=run_dir,
        log_every_n_steps=min(10, args.max_steps),
        enable_progress_bar=sys.stderr.isatty(),
        enable_model_summary=False,
        enable_checkpointing=False,  # RunCheckpoint keeps last.ckpt
        use_distributed_sampler=False,  # the datamodule shards batches by rank itself
    )
    say = print if rank_zero_only.rank == 0 else (lambda *a, **k: None)
    say(f"run {run_id}: {args.upsampler} on {datamodule.name} at {args.image_size}², stages {task.stage_names}"
        + (" (resumed)" if resumed is not None else ""))
    say(f"run directory: {run_dir}")
    if choice.note:
        say(choice.note)
    try:
        trainer.fit(task, datamodule=datamodule, ckpt_path=checkpoint.last_path if resumed is not None else None)
    finally:
        if choice.wandb_mode and rank_zero_only.rank == 0:
            # Close the W&B run: otherwise a later run in this process would attach to it.
            import wandb

            wandb.finish()

    if trainer.global_rank == 0:
        metrics = record.metrics
        say(f"status: {record.status}" + (f" ({record.message})" if record.message else ""))
        say(f"checkerboard score: {metrics.get('checkerboard', float('nan')):.3f} levels "
            f"(ratio {metrics.get('checkerboard_ratio', float('nan')):.4f}), "
            f"spectral distance {metrics.get('spectral_distance', float('nan')):.3f}, "
            f"FID {metrics.get('fid') if metrics.get('fid') is not None else 'unavailable'}")
        say(f"result record: {run_dir / 'result.json'}")
        say(f"samples: {run_dir / 'samples'}")
        if choice.note:
            say(choice.note)
    return 0 if record.status == "finished" else 1


if __name__ == "__main__":
    sys.exit(run_cli(main))
