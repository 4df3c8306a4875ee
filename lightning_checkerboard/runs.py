"""What every training recipe does around ``trainer.fit``: run directory, resume, logger, record, trainer.

The GAN and style-transfer recipes differ in their model and flags; everything here — how a run
is named, resumed, logged, recorded and closed — is the same for both, and lives once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only

from lightning_checkerboard import __version__
from lightning_checkerboard._paths import OutsideFolderError, path_inside, slug
from lightning_checkerboard.cli import UsageError, make_run_dir, new_run_id, parse_devices
from lightning_checkerboard.loggers import LoggerChoice, build_logger
from lightning_checkerboard.records import RecordError, ResultRecord, git_revision, read_record

__all__ = ["RUN_DIR_ENV", "announce", "build_trainer", "fit", "report", "resume_settings", "run_directory", "say",
           "start_logging", "start_record"]

# Lightning's DDP launcher starts the other ranks by running the recipe again; they find the run
# directory chosen by rank zero here instead of making their own.
RUN_DIR_ENV = "LIGHTNING_CHECKERBOARD_RUN_DIR"


def say(*args: Any, **kwargs: Any) -> None:
    """``print`` on rank zero only."""
    if rank_zero_only.rank == 0:
        print(*args, **kwargs)


def resume_settings(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    path_keys: Iterable[str] = ("output_dir",),
    legacy_defaults: Mapping[str, Any] | None = None,
) -> tuple[argparse.Namespace, Path, ResultRecord]:
    """The recorded settings, run directory and record of the run ``--resume`` names.

    Args:
        parser: the recipe's parser (its defaults tell which flags were given).
        args: the parsed flags; only ``--resume`` may differ from the defaults.
        path_keys: settings that are paths (the record stores them as strings).
        legacy_defaults: values of settings that a record made before they existed lacks, when the
            behaviour of that time differs from today's default (the run continues as it started).

    Raises:
        UsageError: other flags given with ``--resume``; no record, checkpoint, or a finished run.
    """
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
    recorded.update({k: v for k, v in (legacy_defaults or {}).items() if k not in record.config})
    recorded.update({k: v for k, v in record.config.items() if k in recorded})
    for key in path_keys:
        if recorded.get(key) is not None:
            recorded[key] = Path(recorded[key])
    recorded["resume"] = run_dir
    return argparse.Namespace(**recorded), run_dir, record


def run_directory(output_dir: Path, task: str, dataset: str, upsampler: str, seed: int) -> Path:
    """A new run directory below ``output_dir``, or on DDP's other ranks the one rank zero made.

    The task, dataset and upsampler become safe path components (``folder:/data/../cats`` →
    ``folder-data-..-cats``, ``..`` → ``x``), and the directory is checked to lie inside ``output_dir``
    before it is created.

    Raises:
        UsageError: the directory would lie outside ``output_dir`` (a symbolic link inside it points
            elsewhere), or it cannot be created or written.
    """
    if rank_zero_only.rank != 0 and os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    parts = [slug(name) for name in (task, dataset, upsampler)]
    try:
        path_inside(output_dir, *parts)
    except OutsideFolderError as err:
        raise UsageError(f"--output-dir: the run directory {err}") from None
    run_dir = make_run_dir(output_dir, *parts, seed, new_run_id())
    os.environ[RUN_DIR_ENV] = str(run_dir)
    return run_dir


def run_config(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """Every flag (paths as strings) plus ``extra``, without ``resume``: the run's recorded config."""
    config = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    config.update(extra, package_version=__version__)
    config.pop("resume", None)
    return config


def new_record(run_id: str, task: str, datamodule: Any, args: argparse.Namespace, stages: list[str],
               options: Mapping[str, Any], config: dict[str, Any], **protocol: Any) -> ResultRecord:
    """The record of a run that starts now (status ``running``)."""
    return ResultRecord(
        run_id=run_id,
        task=task,
        status="running",
        dataset=datamodule.name,
        dataset_fingerprint=datamodule.fingerprint,
        image_size=args.image_size,
        upsampler=args.upsampler,
        upsampler_stages=list(stages),
        upsampler_options=dict(options),
        seed=args.seed,
        max_steps=args.max_steps,
        config=config,
        protocol=dict(protocol),
        package_version=__version__,
        git_revision=git_revision(),
    )


def start_record(resumed: ResultRecord | None, run_id: str, task: str, datamodule: Any, args: argparse.Namespace,
                 stages: list[str], options: Mapping[str, Any], *, config_extra: Mapping[str, Any] | None = None,
                 **protocol: Any) -> ResultRecord:
    """The record of this run: a resumed run's own (``running`` again), or a new one."""
    if resumed is not None:
        resumed.status, resumed.message, resumed.finished_at = "running", "", None
        return resumed
    config = run_config(args, stages=list(stages), **dict(config_extra or {}))
    return new_record(run_id, task, datamodule, args, stages, options, config, **protocol)


def announce(headline: str, run_dir: Path, choice: LoggerChoice) -> None:
    """Say what trains, where its files go and how its logger logs (rank zero)."""
    say(headline)
    say(f"run directory: {run_dir}")
    if choice.note:
        say(choice.note)


def report(record: ResultRecord, run_dir: Path, choice: LoggerChoice, scores: str) -> None:
    """Say how the run ended, its scores, where the record and samples are (rank zero)."""
    say(f"status: {record.status}" + (f" ({record.message})" if record.message else ""))
    say(scores)
    say(f"result record: {run_dir / 'result.json'}")
    say(f"samples: {run_dir / 'samples'}")
    if choice.note:
        say(choice.note)


def start_logging(args: argparse.Namespace, run_dir: Path, record: ResultRecord, *, run_name: str,
                  tags: list[str]) -> LoggerChoice:
    """Build the ``--logger`` (W&B online only when reachable), log the config, note W&B in the record."""
    choice = build_logger(args.logger, run_dir, run_name=run_name, project=args.wandb_project,
                          entity=args.wandb_entity, tags=tags + [t for t in args.tags.split(",") if t],
                          run_id=record.run_id)
    if choice.logger:
        choice.logger.log_hyperparams(record.config)
        if choice.wandb_mode and rank_zero_only.rank == 0:
            experiment = choice.logger.experiment
            record.wandb = {"mode": choice.wandb_mode, "path": getattr(experiment, "path", None),
                            "url": getattr(experiment, "url", None)}
    return choice


def build_trainer(args: argparse.Namespace, *, max_steps: int, logger: Any, callbacks: list, run_dir: Path,
                  strategy: str | None = None) -> pl.Trainer:
    """A Trainer with the recipe's hardware flags; checkpoints by ``RunCheckpoint``, batches by the datamodule."""
    return pl.Trainer(
        max_steps=max_steps,
        accelerator=args.accelerator,
        devices=parse_devices(args.devices),
        num_nodes=args.num_nodes,
        strategy=strategy or args.strategy,
        precision=args.precision,
        logger=logger,
        callbacks=callbacks,
        default_root_dir=run_dir,
        log_every_n_steps=min(10, args.max_steps),
        enable_progress_bar=sys.stderr.isatty(),
        enable_model_summary=False,
        enable_checkpointing=False,  # RunCheckpoint keeps last.ckpt
        use_distributed_sampler=False,  # the datamodule shards batches by rank itself
    )


def fit(trainer: pl.Trainer, task: pl.LightningModule, datamodule: Any, choice: LoggerChoice,
        ckpt_path: Path | None = None) -> None:
    """``trainer.fit``, then close the W&B run (else a later run in this process would attach to it)."""
    try:
        trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
    finally:
        if choice.wandb_mode and rank_zero_only.rank == 0:
            import wandb

            wandb.finish()
