"""Build a leaderboard from its sources: collect the records, aggregate them, write the pages."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_checkerboard.leaderboard.aggregate import aggregate
from lightning_checkerboard.leaderboard.collect import Collection, CollectError, collect
from lightning_checkerboard.leaderboard.render import render

__all__ = ["build"]


def build(sources: Sequence[str], out: str | os.PathLike, *, filters: dict[str, Any] | None = None,
          timeout: float = 10.0, command: str | None = None, regenerate: str | None = None) -> list[Path]:
    """Collect from ``sources``, aggregate and write the leaderboard into ``out``.

    Raises:
        CollectError: a source that cannot be read, or no records at all.
    """
    found: Collection = collect(sources, filters=filters, timeout=timeout)
    if not found.runs and not found.rejected:
        raise CollectError(f"no result records found in {', '.join(map(str, sources))}")
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
