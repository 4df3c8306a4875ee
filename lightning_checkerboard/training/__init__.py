"""Training runs for every task: typed settings and one skeleton around ``trainer.fit``.

- :mod:`~lightning_checkerboard.training.config`: :class:`RunConfig` (the shared settings) and
  :class:`ConfigError`, with each task's settings beside them: :class:`GANConfig`,
  :class:`StyleTransferConfig`, :class:`SuperResolutionConfig`, :class:`AutoencoderConfig`.
- :mod:`~lightning_checkerboard.training.skeleton`: :class:`Recipe` (what a task builds and reports),
  :func:`train` (run directory, resume, record, logger, trainer, fit, report) and :class:`RunResult`.
- :mod:`~lightning_checkerboard.training.parts`: :class:`RunParts` (what ``Recipe.build`` returns),
  :func:`upsampler_stages` and :func:`image_datamodule` (pieces every recipe builds the same way).
- :mod:`~lightning_checkerboard.training.run_dir`: :func:`make_run_directory`,
  :func:`open_resumed_run` and :class:`ResumedRun`.
"""

from lightning_checkerboard.training._quiet import print_rank_zero
from lightning_checkerboard.training.config import (
    AutoencoderConfig,
    ConfigError,
    GANConfig,
    RunConfig,
    StyleTransferConfig,
    SuperResolutionConfig,
)
from lightning_checkerboard.training.parts import RunParts, image_datamodule, upsampler_stages
from lightning_checkerboard.training.run_dir import RUN_DIR_ENV, ResumedRun, make_run_directory, open_resumed_run
from lightning_checkerboard.training.skeleton import Recipe, RunResult, process_count, train

__all__ = [
    "RUN_DIR_ENV",
    "AutoencoderConfig",
    "ConfigError",
    "GANConfig",
    "Recipe",
    "ResumedRun",
    "RunConfig",
    "RunParts",
    "RunResult",
    "StyleTransferConfig",
    "SuperResolutionConfig",
    "image_datamodule",
    "make_run_directory",
    "open_resumed_run",
    "print_rank_zero",
    "process_count",
    "train",
    "upsampler_stages",
]
