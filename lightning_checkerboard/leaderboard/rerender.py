"""Re-render a leaderboard folder from what it holds: its ``leaderboard.json`` and its copied pictures.

The runs a leaderboard was built from are often gone (a grid in ``/tmp``), yet its pages may need
rewriting when the way they are drawn changes. :func:`rerender` reads the folder's own
``leaderboard.json`` (the numbers, each row's runs and, from this version on, each run's values) and
its ``assets/<run_id>/final.png`` and ``spectra.png`` (the pictures the build copied), cuts the
page's pictures from those grids again and writes every page, plot and table anew. Nothing is
measured again and no number changes; the rows are ranked again by today's rule (Holm-adjusted
Welch tests), from each run's values or, where only a row's mean and sample std were kept, from
those, which are all Welch's test reads.

A ``leaderboard.json`` written before per-run values were kept has only each row's mean and std;
where the folder holds a report of the same runs (``style_transfer.json``, ``super_resolution.json``,
written by the report scripts: ``{"runs": {upsampler: [{"run_id": …, metric: value, …}]}}``), each run's
values are taken from it, matched by run id. Rows with neither show their mean and std, and their
largest per-seed bound as the most it can be (see
:func:`~lightning_checkerboard.leaderboard.formatting.largest_bound`).

The folder is untrusted like any other: every file is read with a bounded read as a regular file
inside the folder, run ids must be plain names, and pictures are opened through
:func:`~lightning_checkerboard._untrusted.open_image`.
"""

from __future__ import annotations

import os
import re
import statistics
from pathlib import Path

from lightning_checkerboard._io import atomic_write_bytes
from lightning_checkerboard._paths import OutsideFolderError, path_inside
from lightning_checkerboard._untrusted import UntrustedFileError, open_image
from lightning_checkerboard.leaderboard.aggregate import METRICS, Leaderboard
from lightning_checkerboard.leaderboard.ranking import TEST_NAME, rank_rows
from lightning_checkerboard.leaderboard.render import (
    _JSON,
    _MAX_MANIFEST_BYTES,
    OutputFolderError,
    _board_run_ids,
    _previous,
    _read_json,
    _remove_stale,
    _write_manifest,
    _write_pages,
)
from lightning_checkerboard.leaderboard.thumbnails import MAX_PICTURE_PIXELS, derive_pictures, thumbnail_paths
from lightning_checkerboard.metrics.directions import METRIC_INFO, metric_info

__all__ = ["REPORTS", "rerender"]

#: Reports in a leaderboard folder that may hold each run's values, by file name.
REPORTS = ("style_transfer.json", "super_resolution.json")
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_KEYS = {key for key, _, _ in METRICS}


def _finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) != float("inf")


def _report_values(out: Path) -> dict[str, dict[str, float]]:
    """Each run's metric values found in the folder's reports, by run id."""
    values: dict[str, dict[str, float]] = {}
    for name in REPORTS:
        payload = _read_json(out / name, out, _MAX_MANIFEST_BYTES) if os.path.lexists(out / name) else None
        runs = payload.get("runs") if isinstance(payload, dict) else None
        for entries in runs.values() if isinstance(runs, dict) else []:
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and isinstance(entry.get("run_id"), str):
                    values[entry["run_id"]] = {k: float(v) for k, v in entry.items()
                                               if k in _KEYS and _finite_number(v)}
    return values


def _fill_values(board: Leaderboard, reports: dict[str, dict[str, float]]) -> int:
    """Give each run without values its report's; the number of runs filled."""
    filled = 0
    for table in board.tables:
        for row in table.rows:
            for run in row.runs:
                if run.metrics or run.throughput or run.run_id not in reports:
                    continue
                for key, value in reports[run.run_id].items():
                    source = METRIC_INFO[key].source if key in METRIC_INFO else "metrics"
                    getattr(run, source)[key] = value
                filled += 1
    return filled


def _seed_values(row, primary: str) -> list[float]:
    """The row's per-run values of ``primary``: the runs' own, or, where the folder kept only the mean and
    sample std, ``n`` values with that mean and std (Welch's test reads nothing else)."""
    own = [run.metrics.get(primary) if primary in run.metrics else run.throughput.get(primary) for run in row.runs]
    if own and all(_finite_number(v) for v in own):
        return [float(v) for v in own]
    stat = row.metrics.get(primary)
    if stat is None or not _finite_number(stat.mean):
        return []
    n = max(stat.n, 1)
    if n == 1 or stat.std is None:
        return [float(stat.mean)] * n
    unit = statistics.stdev(range(n))
    return [stat.mean + stat.std * (i - (n - 1) / 2) / unit for i in range(n)]


def _rerank(board: Leaderboard) -> int:
    """Rank every table again by today's rule (:func:`~lightning_checkerboard.leaderboard.ranking.rank_rows`);
    the number of rows whose rank changed."""
    changed = 0
    for table in board.tables:
        if table.primary is None:
            continue
        values = [_seed_values(row, table.primary) for row in table.rows]
        if any(not v for v in values):
            continue
        baselines = [[row.baseline.mean] if row.baseline is not None and _finite_number(row.baseline.mean) else []
                     for row in table.rows]
        order, results = rank_rows(values, baselines, metric_info(table.primary).higher_is_better)
        for row, result in zip(table.rows, results):
            changed += row.rank != result.rank
            row.rank, row.learned, row.p_adjusted = result.rank, result.learned, result.p_adjusted
        table.rows = [table.rows[i] for i in order]
        table.test = TEST_NAME
    return changed


def _pictures(board: Leaderboard, out: Path) -> tuple[dict[str, dict[str, str]], dict[str, float]]:
    """Each run's pictures in the folder, the page's pictures cut again from its grid; the strengths."""
    assets: dict[str, dict[str, str]] = {}
    strengths: dict[str, float] = {}
    for table in board.tables:
        for row in table.rows:
            for run in row.runs:
                paths = thumbnail_paths(run.run_id)
                found = {}
                for kind in ("samples", "spectra"):
                    path = out / paths[kind]
                    if os.path.lexists(path):
                        try:
                            with open_image(path, root=out, max_pixels=MAX_PICTURE_PIXELS) as image:
                                image.load()
                                if kind == "samples":
                                    derived, strengths[run.run_id] = derive_pictures(
                                        image.convert("RGB"), table.task, table.image_size)
                                    for name, payload in derived.items():
                                        atomic_write_bytes(path_inside(out, *paths[name].split("/")), payload)
                                        found[name] = paths[name]
                            found[kind] = paths[kind]
                        except (UntrustedFileError, OutsideFolderError, OSError, ValueError, SyntaxError) as err:
                            board.rejected.append((paths[kind], f"{paths[kind]}: {err}; picture skipped."))
                assets[run.run_id] = found
    return assets, strengths


def rerender(out: str | os.PathLike) -> list[Path]:
    """Rewrite the pages, plots and tables of the leaderboard in ``out`` from the folder alone.

    Args:
        out: a folder the leaderboard build wrote.

    Returns:
        Every file written or kept, the manifest last.

    Raises:
        OutputFolderError: ``out`` is not a leaderboard, or its ``leaderboard.json`` cannot be read.
    """
    out = Path(out)
    previous = _previous(out)
    payload = _read_json(out / _JSON, out, _MAX_MANIFEST_BYTES) if previous is not None else None
    if not isinstance(payload, dict) or not isinstance(payload.get("command"), str):
        raise OutputFolderError(f"--out {out}: no leaderboard.json the build wrote; build it with "
                                "python -m lightning_checkerboard.leaderboard build.")
    try:
        board = Leaderboard.from_dict(payload)
    except ValueError as err:
        raise OutputFolderError(f"--out {out}: {err}") from None
    bad = sorted(i for i in _board_run_ids(board) if not _RUN_ID.fullmatch(i))
    if bad:
        raise OutputFolderError(f"--out {out}: leaderboard.json names run {bad[0]!r}, not a run id "
                                "(1 to 128 letters, digits, '-' or '_').")
    _fill_values(board, _report_values(out))
    _rerank(board)
    assets, strengths = _pictures(board, out)
    names = _write_pages(board, out, payload["command"], None, assets, strengths)
    _remove_stale(out, previous.files - set(names))
    manifest = _write_manifest(out, set(names), _board_run_ids(board))
    return [out / name for name in sorted(names)] + [manifest]
