"""One training skeleton for every recipe: what happens around the model, the same for every task.

A recipe says what to train — a :class:`Recipe` subclass with :meth:`Recipe.build` (data, model,
measurement callbacks) and :meth:`Recipe.scores_line` — and :func:`train` does the rest, in this
order:

1. resume: with ``config.resume`` set, read that run's record and checkpoint (data only), check the
   run is this recipe's and take every setting from the record but the weights files of
   ``LOCAL_FILES``, which come from ``config`` (a note says when a recorded one is dropped); else
   check that ``config.output_dir`` can be written;
2. the hardware settings are checked, and each image count of
   :meth:`~lightning_checkerboard.training.config.RunConfig.sample_counts` against the number of
   processes they start;
3. ``recipe.build(config, resumed)``: every setting checked, nothing trained yet; its ``ValueError``
   or ``TypeError`` becomes a :class:`~lightning_checkerboard.training.config.ConfigError`, its
   warnings one ``WARNING:`` line each;
4. the data (``prepare_data``, ``setup("fit")``), the run directory
   (:func:`~lightning_checkerboard.training.run_dir.make_run_directory`, with the settings in its
   ``config.yaml``), the seed, then the model
   (``parts.make_task()``; a resumed checkpoint's weights must be its names and shapes);
5. the result record, the logger (hyperparameters logged, W&B noted in the record);
6. the ``Trainer``: the recipe's callbacks, then ``RunCheckpoint`` (``checkpoints/last.ckpt`` every
   ``eval_every`` iterations) and ``ResultRecorder`` (``result.json``), checkpoints read weights-only;
7. a headline, ``trainer.fit`` (from the checkpoint when resuming) with Lightning's noise filtered
   out — with a progress line every ``$LIGHTNING_CHECKERBOARD_PROGRESS_SECONDS`` (60 s) when stderr
   is not a terminal (:class:`~lightning_checkerboard.callbacks.TrainingProgress`) — then the
   report: iterations, status, the recipe's scores line, where the record and
   samples are. A user mistake found before the first step (a ``ConfigError`` or ``DatasetError``,
   such as a batch larger than the data) leaves no run: the new directory is removed, a resumed
   run's record is put back as it was.

Example (a recipe in full; ``recipes/gan.py`` and ``recipes/style_transfer.py`` are two more)::

    class Denoise(Recipe):
        task = "denoise"
        config_class = RunConfig

        def build(self, config, resumed):
            stages = upsampler_stages(config, num_stages=2)
            datamodule = image_datamodule(config, heldout_samples=config.eval_samples)
            return RunParts(
                datamodule=datamodule,
                make_task=lambda: DenoiseTask(stages, **config.upsampler_options()),
                stages=stages,
                callbacks=[SampleGrid(config.eval_every), ArtifactMetrics(config.eval_every, config.eval_samples)],
                headline=f"denoising with {config.upsampler} on {datamodule.name}",
            )

        def scores_line(self, record):
            return f"checkerboard score: {record.metrics.get('checkerboard')}"

    result = train(Denoise(), RunConfig(dataset="digits", max_steps=100, logger="csv"))
    result.record.status, result.run_dir
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from lightning_checkerboard import __version__
from lightning_checkerboard._lightning import Callback, pl, rank_zero_only
from lightning_checkerboard._progress import progress_seconds
from lightning_checkerboard.callbacks import ResultRecorder, RunCheckpoint, TrainingProgress
from lightning_checkerboard.callbacks.checkpoint import WeightsOnlyCheckpointIO
from lightning_checkerboard.data import DatasetError
from lightning_checkerboard.loggers import LoggerChoice, build_logger
from lightning_checkerboard.records import ResultRecord, git_revision, write_record
from lightning_checkerboard.training._quiet import print_rank_zero, quiet_lightning, silent_lightning, warnings_as_lines
from lightning_checkerboard.training.config import ConfigError, RunConfig
from lightning_checkerboard.training.config_file import CONFIG_FILE_NAME, write_config_file
from lightning_checkerboard.training.parts import RunParts
from lightning_checkerboard.training.run_dir import (
    RUN_DIR_ENV,
    ResumedRun,
    check_resumed_weights,
    check_writable_dir,
    make_run_directory,
    missing_folders,
    open_resumed_run,
    remove_empty_folders,
)

__all__ = ["Recipe", "RunResult", "process_count", "train"]

C = TypeVar("C", bound=RunConfig)


@dataclass
class RunResult:
    """How a run ended: its record (``record.status``: ``finished``, ``interrupted``, ``diverged`` …) and its directory."""

    record: ResultRecord
    run_dir: Path

    @property
    def finished(self) -> bool:
        return self.record.status == "finished"


class Recipe(ABC, Generic[C]):
    """A training task for :func:`train`: its name, its config class, what it builds, how it reports.

    A subclass sets :attr:`task` (and :attr:`config_class` when it has settings of its own) and
    writes :meth:`build` and :meth:`scores_line`; everything else is :func:`train`'s.

    Attributes:
        task: the task's name: the record's ``task``, the first folder below ``output_dir``, the
            ``task:`` tag.
        run_name: the start of the logger's run name ``<run_name>-<upsampler>-s<seed>`` (default: ``task``).
        config_class: the config this recipe takes (a :class:`RunConfig` subclass).
    """

    task: ClassVar[str]
    run_name: ClassVar[str | None] = None
    config_class: ClassVar[type[RunConfig]] = RunConfig

    @abstractmethod
    def build(self, config: C, resumed: ResumedRun | None) -> RunParts:
        """Check every setting and build the run's parts; nothing may train or write files yet.

        Args:
            config: the run's settings (a resumed run's are its recorded ones).
            resumed: the run being continued (its record and checkpoint), else ``None``.

        Raises:
            ValueError, TypeError: a setting that cannot work; the message starts with the field's name.
        """

    @abstractmethod
    def scores_line(self, record: ResultRecord) -> str:
        """The one line of the run's headline numbers, printed after training."""


def train(recipe: Recipe, config: RunConfig) -> RunResult:
    """Run ``recipe`` with ``config``: the whole skeleton of the module docstring; prints on rank zero.

    Raises:
        ConfigError: settings that cannot make a run, found before training (the message starts
            with the field it is about).
        DatasetError: the data cannot be found or read.
        TypeError: ``config`` is not of the recipe's ``config_class``.
    """
    if not isinstance(config, recipe.config_class):
        raise TypeError(f"{type(recipe).__name__} takes a {recipe.config_class.__name__}; got {type(config).__name__}.")
    try:
        progress = progress_seconds()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    resumed, original_record, created = None, None, []
    if config.resume is not None:
        resumed = open_resumed_run(config.resume)
        original_record = copy.deepcopy(resumed.record)
        config = _resumed_config(recipe, config, resumed)
    else:
        # The folders this run makes (output_dir and those below it), removed again if it never trains.
        created = missing_folders(config.output_dir, recipe.task, config.dataset, config.upsampler)
        check_writable_dir(config.output_dir)  # before anything is built, probed or printed

    try:
        processes = _check_processes(config)
        # The recipe's parts and the data in one block: a warning of the parts (FID unavailable …) is
        # printed once the data is there, so data that cannot be had ends the run with its one line alone.
        with warnings_as_lines():
            try:
                parts = recipe.build(config, resumed)
            except (ConfigError, DatasetError):
                raise
            except (ValueError, TypeError) as err:
                raise ConfigError(str(err)) from None
            datamodule = parts.datamodule
            datamodule.prepare_data()  # before the run directory: data that is not there leaves no run behind
            datamodule.setup("fit")
        _check_batch_fits(datamodule, config.batch_size, processes)
    except (ConfigError, DatasetError):
        if rank_zero_only.rank == 0:
            remove_empty_folders(created)
        raise
    run_dir = resumed.run_dir if resumed is not None else make_run_directory(
        config.output_dir, recipe.task, config.dataset, config.upsampler, config.seed)
    run_id = resumed.record.run_id if resumed is not None else run_dir.name.rsplit("-", 1)[-1]
    record = resumed.record if resumed is not None else _new_record(run_id, recipe.task, datamodule, config, parts)
    if resumed is None and rank_zero_only.rank == 0:  # the settings as --config reads them back
        write_config_file(config, run_dir / CONFIG_FILE_NAME)
    first_step = int(resumed.checkpoint["global_step"]) if resumed is not None else 0
    trainer = None
    try:
        pl.seed_everything(config.seed, workers=True, verbose=False)
        task = parts.make_task()
        if resumed is not None:
            check_resumed_weights(resumed.checkpoint, task, run_dir)
        record.status, record.message, record.finished_at = "running", "", None
        tags = [f"task:{recipe.task}", f"dataset:{datamodule.name}", f"upsampler:{config.upsampler}", *parts.tags,
                *sorted({f"stage:{name}" for name in parts.stages})]
        logging_setup = _start_logging(config, run_dir, record, f"{recipe.run_name or recipe.task}-"
                                       f"{config.upsampler}-s{config.seed}", tags)
        checkpoint = RunCheckpoint(run_dir / "checkpoints", every_n_steps=config.eval_every)
        # The progress lines after the measuring callbacks: they stop once the final measurements are done.
        callbacks = [*parts.callbacks, TrainingProgress(config.batch_size, config.max_steps, seconds=progress),
                     checkpoint, ResultRecorder(record, config.batch_size)]  # last: collects the rest

        max_steps = config.max_steps * getattr(task, "optimizer_steps_per_iteration", 1)  # Lightning counts updates
        with quiet_lightning():
            trainer = _build_trainer(config, parts, max_steps=max_steps, logger=logging_setup.logger,
                                     callbacks=callbacks, run_dir=run_dir)
            print_rank_zero(f"run {run_id}: {parts.headline}" + (" (resumed)" if resumed is not None else ""))
            print_rank_zero(f"run directory: {run_dir}")
            if logging_setup.note:
                print_rank_zero(logging_setup.note)
            _fit(trainer, task, datamodule, logging_setup, resumed.checkpoint_path if resumed is not None else None)
    except (ConfigError, DatasetError):
        # A user mistake found before the first step (a batch larger than the data …) is not a run:
        # a new directory goes, a resumed one gets its record back as it was.
        if trainer is None or trainer.global_step in (0, first_step):  # before or after the checkpoint's restore
            _undo(run_dir, resumed, original_record)
            if rank_zero_only.rank == 0:
                remove_empty_folders(created)
        raise

    if rank_zero_only.rank == 0:  # the record's numbers are rank zero's
        _report(record, config, recipe.scores_line(record), run_dir, logging_setup)
    return RunResult(record, run_dir)


#: How messages name each recipe's task, and the script that runs it.
_TASK_WORDS = {"gan": "GAN", "style_transfer": "style-transfer", "super_resolution": "super-resolution",
               "autoencoder": "autoencoder"}


def _a(word: str) -> str:
    """``word`` after its indefinite article: "a GAN", "an autoencoder"."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _resumed_config(recipe: Recipe, config: RunConfig, resumed: ResumedRun) -> RunConfig:
    """The config ``resumed`` ran with, its weights files (``LOCAL_FILES``) from ``config`` (the command line).

    A weights file the record names is dropped with a one-line note unless ``config`` names one
    again: a received run directory never chooses which file is loaded.

    Raises:
        ConfigError: the run is another recipe's, or its recorded settings are not valid.
    """
    task = resumed.record.task
    if task != recipe.task:
        words = _TASK_WORDS.get(task, repr(task))
        script = f"; continue it with recipes/{task}.py" if task in _TASK_WORDS else ""
        ours = _TASK_WORDS.get(recipe.task, repr(recipe.task))
        raise ConfigError(f"resume: {resumed.run_dir} holds {_a(words)} run, not {_a(ours)} one{script}")
    local = {name: getattr(config, name) for name in config.LOCAL_FILES}
    try:
        resumed_config = type(config).from_record(resumed.record.config, resume=resumed.run_dir, local=local)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"resume: the settings recorded in {resumed.run_dir} are not valid: {err}") from None
    for name in config.LOCAL_FILES:
        key = config.key(name)
        recorded = resumed.record.config.get(key)
        if recorded is not None and local[name] is None:
            flag = "--" + key.replace("_", "-")
            print_rank_zero(f"note: the run was recorded with {flag} {str(recorded)[:200]!r}; a resumed run reads "
                            f"no file its record names, so it goes without (give {flag} again to use it)")
        value = getattr(resumed_config, name)
        resumed.record.config[key] = None if value is None else str(value)
    return resumed_config


def _undo(run_dir: Path, resumed: ResumedRun | None, original_record: ResultRecord | None) -> None:
    """Remove a run directory made for a run that never trained, or put a resumed run's record back."""
    if rank_zero_only.rank != 0:
        return
    if resumed is None:
        shutil.rmtree(run_dir, ignore_errors=True)
        os.environ.pop(RUN_DIR_ENV, None)
    elif original_record is not None:
        try:
            write_record(original_record, run_dir)
        except OSError:
            pass  # the record says "failed" then: the user still sees the one-line error


def _report(record: ResultRecord, config: RunConfig, scores: str, run_dir: Path, logging_setup: LoggerChoice) -> None:
    """How the run ended, its numbers, where its files are."""
    print(f"stopped after {record.steps} of {config.max_steps} iterations")
    print(f"status: {record.status}" + (f" ({record.message})" if record.message else ""))
    print(scores)
    print(f"result record: {run_dir / 'result.json'}")
    print(f"samples: {run_dir / 'samples'}")
    if logging_setup.note:
        print(logging_setup.note)


def _new_record(run_id: str, task: str, datamodule: Any, config: RunConfig, parts: RunParts) -> ResultRecord:
    recorded = {**config.record_config(), "stages": list(parts.stages), **parts.recorded,
                "package_version": __version__}
    return ResultRecord(
        run_id=run_id,
        task=task,
        status="running",
        dataset=datamodule.name,
        dataset_fingerprint=datamodule.fingerprint,
        image_size=config.image_size,
        upsampler=config.upsampler,
        upsampler_stages=list(parts.stages),
        upsampler_options=config.upsampler_options(),
        seed=config.seed,
        max_steps=config.max_steps,
        config=recorded,
        protocol=dict(parts.protocol),
        package_version=__version__,
        git_revision=git_revision(),
    )


def _start_logging(config: RunConfig, run_dir: Path, record: ResultRecord, run_name: str,
                   tags: list[str]) -> LoggerChoice:
    """Build the logger (W&B online only when reachable), log the config, note W&B in the record."""
    logging_setup = build_logger(config.logger, run_dir, run_name=run_name, project=config.wandb_project,
                                 entity=config.wandb_entity, tags=tags + [t for t in config.tags.split(",") if t],
                                 run_id=record.run_id)
    if logging_setup.logger:
        logging_setup.logger.log_hyperparams(record.config)
        if logging_setup.wandb_mode and rank_zero_only.rank == 0:
            experiment = logging_setup.logger.experiment
            online = logging_setup.wandb_mode == "online"  # an offline run has no URL (W&B warns when asked)
            record.wandb = {"mode": logging_setup.wandb_mode, "path": getattr(experiment, "path", None),
                            "url": getattr(experiment, "url", None) if online else None}
    return logging_setup


def _parse_devices(text: str) -> int | str | list[int]:
    """``"2"`` → 2, ``"0,1"`` → [0, 1], ``"auto"``/``"-1"`` as Lightning takes them."""
    if "," in text:
        return [int(part) for part in text.split(",") if part.strip()]
    try:
        return int(text)
    except ValueError:
        return text


def _hardware(config: RunConfig, strategy: str | None = None) -> dict[str, Any]:
    return dict(accelerator=config.accelerator, devices=_parse_devices(config.devices), num_nodes=config.num_nodes,
                strategy=strategy or config.strategy, precision=config.precision)


def process_count(config: RunConfig) -> int:
    """How many processes a run with these hardware settings starts (a bare ``Trainer`` of them says).

    Raises:
        ConfigError: settings Lightning refuses here (no such accelerator, an unknown precision …).
    """
    with silent_lightning():  # the real Trainer says which hardware it uses; this one only counts processes
        try:
            return pl.Trainer(**_hardware(config), logger=False, enable_progress_bar=False,
                              enable_model_summary=False, enable_checkpointing=False).world_size
        except Exception as err:  # Lightning's MisconfigurationException and friends: one line, not a traceback
            raise ConfigError(f"the hardware settings do not work here: {' '.join(str(err).split())}") from None


def _check_processes(config: RunConfig) -> int:
    """The hardware settings work here, and each count of ``config.sample_counts()`` gives every process a share.

    Returns:
        The number of processes.

    Raises:
        ConfigError: settings Lightning refuses, or a count below the number of processes.
    """
    processes = process_count(config)
    for name, count in config.sample_counts().items():
        if count < processes:
            raise ConfigError(f"{name} must be at least the number of processes ({processes}), so that each "
                              f"measures a share; got {count}.")
    return processes


def _check_batch_fits(datamodule: Any, batch_size: int, processes: int) -> None:
    """Every process gets a full batch from the training set (when the datamodule says its size).

    Raises:
        ConfigError: fewer training images than ``batch_size`` times ``processes`` (the message starts with
            ``batch_size``).
    """
    describe = getattr(datamodule, "describe", None)
    train = describe().get("train_samples") if callable(describe) else None
    if isinstance(train, int) and train < batch_size * processes:
        each = f" on each of {processes} processes" if processes > 1 else ""
        raise ConfigError(f"batch_size must be at most the {train // processes} training images of "
                          f"{datamodule.name!r}{each}; got {batch_size}.")


def _build_trainer(config: RunConfig, parts: RunParts, *, max_steps: int, logger: Any, callbacks: list[Callback],
                   run_dir: Path) -> pl.Trainer:
    """A Trainer with the run's hardware settings; checkpoints by ``RunCheckpoint``, batches by the datamodule."""
    return pl.Trainer(
        **_hardware(config, parts.strategy),
        max_steps=max_steps,
        logger=logger,
        callbacks=callbacks,
        plugins=[WeightsOnlyCheckpointIO()],
        default_root_dir=run_dir,
        log_every_n_steps=min(10, config.max_steps),
        enable_progress_bar=sys.stderr.isatty(),
        enable_model_summary=False,
        enable_checkpointing=False,  # RunCheckpoint keeps last.ckpt
        use_distributed_sampler=False,  # the datamodule shards batches by rank itself
    )


def _fit(trainer: pl.Trainer, task: pl.LightningModule, datamodule: Any, logging_setup: LoggerChoice,
         ckpt_path: Path | None) -> None:
    """``trainer.fit``, then close the W&B run (else a later run in this process would attach to it)."""
    try:
        trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
    finally:
        if logging_setup.wandb_mode and rank_zero_only.rank == 0:
            import wandb

            wandb.finish()
