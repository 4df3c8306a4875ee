"""The leaderboard: collect result records, aggregate seeds, rank upsamplers, publish the tables.

    python -m lightning_checkerboard.leaderboard build --from runs --out my-leaderboard

Records come from local run directories (every ``result.json`` below a folder) or from a W&B
project (``wandb:<entity>/<project>``). Runs are grouped into tables by task, dataset, resolution,
training budget and metric protocol; within a table one row per upsampler configuration holds the
mean ± std over its seeds. Runs that did not finish are listed apart and never averaged in. Run
folders are untrusted (nothing outside them is read, non-regular files are refused, bad pictures are
skipped), and the output folder keeps a manifest of the files the build wrote, the only ones it
replaces or deletes.
"""

from lightning_checkerboard.leaderboard.aggregate import Leaderboard, Row, Stat, Table, aggregate, deduplicate
from lightning_checkerboard.leaderboard.collect import (
    Collected,
    CollectError,
    Collection,
    collect,
    collect_local,
    collect_wandb,
    record_from_wandb_run,
)
from lightning_checkerboard.leaderboard.pipeline import Built, build, build_leaderboard
from lightning_checkerboard.leaderboard.render import MANIFEST, OutputFolderError, render
from lightning_checkerboard.leaderboard.wandb_tables import log_to_wandb

__all__ = [
    "MANIFEST",
    "Built",
    "CollectError",
    "Collected",
    "Collection",
    "Leaderboard",
    "OutputFolderError",
    "Row",
    "Stat",
    "Table",
    "aggregate",
    "build",
    "build_leaderboard",
    "collect",
    "collect_local",
    "collect_wandb",
    "deduplicate",
    "log_to_wandb",
    "record_from_wandb_run",
    "render",
]
