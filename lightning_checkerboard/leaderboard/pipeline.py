"""Build a leaderboard from its sources: collect the records, aggregate them, write the pages."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_checkerboard.leaderboard.aggregate import aggregate
from lightning_checkerboard.leaderboard.collect import Collection, CollectError, collect
from lightning_checkerboard.leaderboard.render import render

__all__ = ["Built", "build", "build_leaderboard"]


@dataclass
class Built:
    """What a build did.

    Attributes:
        files: every file written into the output folder.
        runs: the records ranked or listed (duplicates counted once).
        rejected: ``(source, reason)`` for every file, run or picture left out.
    """

    files: list[Path]
    runs: int
    rejected: list[tuple[str, str]]


def build_leaderboard(sources: Sequence[str], out: str | os.PathLike, *, filters: dict[str, Any] | None = None,
                      timeout: float = 10.0, command: str | None = None, regenerate: str | None = None,
                      force: bool = False) -> Built:
    """Collect from ``sources``, aggregate and write the leaderboard into ``out``.

    A record, a run or a picture that cannot be read is left out and listed with its reason (the
    index's "Rejected files"); the build goes on with the rest.

    Args:
        sources: run folders, ``result.json`` files or ``wandb:<entity>/<project>``.
        out: the output folder (see :func:`~lightning_checkerboard.leaderboard.render.render` for
            which folders it writes into and what ``force`` allows).
        filters: W&B run filters.
        timeout: seconds to wait for the W&B server.
        command: the build command printed in the pages (default: rebuilt from the arguments).
        regenerate: a command that reruns the runs as well, for the index.
        force: see :func:`~lightning_checkerboard.leaderboard.render.render`.

    Raises:
        CollectError: a source that cannot be read, or no records at all.
        OutputFolderError: ``out`` may not be written (see ``render``).
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
    files = render(board, out, command=command, regenerate=regenerate, run_dirs=run_dirs, force=force)
    runs = sum(row.n for table in board.tables for row in table.rows) + len(board.excluded)
    return Built(files, runs, list(board.rejected))


def build(sources: Sequence[str], out: str | os.PathLike, *, filters: dict[str, Any] | None = None,
          timeout: float = 10.0, command: str | None = None, regenerate: str | None = None,
          force: bool = False) -> list[Path]:
    """:func:`build_leaderboard`, returning the files written.

    Raises:
        CollectError: a source that cannot be read, or no records at all.
        OutputFolderError: ``out`` may not be written.
    """
    return build_leaderboard(sources, out, filters=filters, timeout=timeout, command=command,
                             regenerate=regenerate, force=force).files
