"""Build a leaderboard from its sources, and publish its tables to W&B."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_checkerboard.leaderboard.aggregate import METRICS, Leaderboard, aggregate
from lightning_checkerboard.leaderboard.collect import Collection, collect
from lightning_checkerboard.leaderboard.render import render

__all__ = ["build", "log_to_wandb"]


def build(sources: Sequence[str], out: str | os.PathLike, *, filters: dict[str, Any] | None = None,
          timeout: float = 10.0, command: str | None = None, regenerate: str | None = None) -> list[Path]:
    """Collect from ``sources``, aggregate and write the leaderboard into ``out``.

    Raises:
        CollectError: a source that cannot be read, or no records at all.
    """
    from lightning_checkerboard.leaderboard.collect import CollectError

    found: Collection = collect(sources, filters=filters, timeout=timeout)
    if not found.runs and not found.rejected:
        raise CollectError(f"--from {' '.join(sources)}: no result records found")
    board = aggregate(found_run.record for found_run in found.runs)
    board.rejected = list(found.rejected)
    if command is None:
        command = "python -m lightning_checkerboard.leaderboard build " + " ".join(
            f"--from {shlex.quote(str(s))}" for s in sources) + f" --out {shlex.quote(str(out))}"
    # The kept copy of a duplicate may be the W&B one: any local copy still has the pictures.
    run_dirs: dict[str, Path | None] = {}
    for found_run in found.runs:
        run_dirs[found_run.record.run_id] = run_dirs.get(found_run.record.run_id) or found_run.run_dir
    return render(board, out, command=command, regenerate=regenerate, run_dirs=run_dirs)


def log_to_wandb(board: Leaderboard, project: str, entity: str | None = None, timeout: float = 3.0) -> str:
    """Log every table as a ``wandb.Table`` to ``entity/project`` when W&B is online.

    Returns:
        A one-line note: where the tables went, or why they were not logged (offline or
        unreachable W&B logs nothing: a leaderboard run in an offline folder helps nobody).
    """
    from lightning_checkerboard.loggers import choose_wandb_mode

    mode, reason = choose_wandb_mode(timeout)
    if mode != "online":
        return f"--log-to-wandb: not logged, W&B is {mode} ({reason})"
    import wandb

    columns = ["rank", "learned", "upsampler", "n", "seeds", *(f"{key} mean" for key, _, _ in METRICS),
               *(f"{key} std" for key, _, _ in METRICS)]
    run = wandb.init(project=project, entity=entity, job_type="leaderboard", name="leaderboard")
    try:
        for table in board.tables:
            data = []
            for row in table.rows:
                stats = [row.metrics[key] for key, _, _ in METRICS]
                data.append([row.rank, row.learned, row.label, row.n, " ".join(map(str, row.seeds)),
                             *(None if s is None else s.mean for s in stats),
                             *(None if s is None or s.std is None else s.std for s in stats)])
            run.log({f"leaderboard/{table.key}": wandb.Table(columns=columns, data=data)})
        url = run.url
    finally:
        run.finish()
    return f"--log-to-wandb: {len(board.tables)} table(s) logged to {url}"
