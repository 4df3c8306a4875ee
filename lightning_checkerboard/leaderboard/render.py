"""Write a leaderboard: markdown per task and dataset, an index, CSV, JSON and a static HTML page.

Everything goes to one folder (``--out``): ``README.md`` (index and the regenerate command),
``<task>-<dataset>.md``, ``leaderboard.csv``, ``leaderboard.json``, ``index.html``
(:mod:`~lightning_checkerboard.leaderboard.page`), a quality-versus-checkerboard scatter per ranked
table, and ``assets/<run_id>/`` (each local run's sample grid, the pictures cut from it and its
spectra plot, by :mod:`~lightning_checkerboard.leaderboard.thumbnails`). A markdown table keeps to
:data:`MARKDOWN_COLUMNS` columns so it fits GitHub's page: the verdict sentence above it, the winner
in bold, ``±`` that never breaks, constant values in its caption, everything else in the CSV and
the page. Every file is written atomically, and listed in the folder's manifest (:data:`MANIFEST`):
a rebuild replaces or deletes those files and no others, and :func:`render` refuses (unless forced)
a folder that holds other files and no leaderboard, or a leaderboard with runs the new one lacks, so
no rows are dropped silently. :mod:`~lightning_checkerboard.leaderboard.rerender` writes the same
files again from the folder alone.

Records come from other people's folders and W&B projects, so nothing in them is trusted here
either, even after :mod:`lightning_checkerboard.records` has checked them: every path written is
checked to lie inside the output folder (:func:`~lightning_checkerboard._paths.path_inside`); every
field reaching the HTML, the CSV and the markdown goes through
:mod:`~lightning_checkerboard.leaderboard.escape`, and the page's Content-Security-Policy lets no
script run but its own. :func:`~lightning_checkerboard.leaderboard.pipeline.build` collects,
aggregates and calls :func:`render`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning_checkerboard._io import atomic_write_bytes, atomic_write_json, atomic_write_text
from lightning_checkerboard._paths import OutsideFolderError, path_inside
from lightning_checkerboard._untrusted import UntrustedFileError, describe_kind, read_bytes
from lightning_checkerboard.cli import UsageError
from lightning_checkerboard.leaderboard.aggregate import METRICS, Leaderboard, Row, Table, page_stem
from lightning_checkerboard.leaderboard.escape import csv_cell, md_code, md_text
from lightning_checkerboard.leaderboard.formatting import NBSP, bound_text, stat_text
from lightning_checkerboard.leaderboard.page import html_page
from lightning_checkerboard.leaderboard.plots import ScatterRow, quality_artifact_scatter
from lightning_checkerboard.leaderboard.summary import (
    BOUNDS,
    artifact_key,
    constant_caption,
    constant_keys,
    decimals,
    default_keys,
    metric_keys,
    reading,
    seed_values,
    settings_text,
    verdict,
)
from lightning_checkerboard.leaderboard.thumbnails import ASSETS, copy_thumbnails, thumbnail_paths
from lightning_checkerboard.metrics.directions import METRIC_INFO
from lightning_checkerboard.records import ResultRecord

__all__ = ["MANIFEST", "OutputFolderError", "render"]

_JSON = "leaderboard.json"
_CSV = "leaderboard.csv"
_HTML = "index.html"
#: The file that marks a folder as a leaderboard and lists every file the build wrote in it.
MANIFEST = ".lightning-checkerboard-leaderboard.json"
_MANIFEST_FORMAT = "lightning-checkerboard leaderboard"
_MAX_MANIFEST_BYTES = 64 << 20  # also bounds the leaderboard.json read from folders built before the manifest
# Other scripts write these into the same folder; the index lists them, the build never touches them.
_BENCHMARK_GLOBS = ("speed.md", "bench_*.md", "calibration*.md", "detection_limits.md", "gan_defaults.md", "probe.md")
_EXPERIMENT_GLOBS = ("article.md", "init.md", "gradients.md", "style_transfer.md", "super_resolution.md")
_MAX_PAGE_STEM = 96  # file systems take 255 bytes; a record's names may hold 512 characters each


def _rank_text(row: Row) -> str:
    if row.learned is False:
        return "did not learn"
    return "–" if row.rank is None else str(row.rank)


def _ranking_note(table: Table) -> str:
    """How ``table`` is ranked, in two sentences."""
    if table.primary is None:
        return ("Unranked: no quality metric (FID, SWD, PSNR, SSIM) was recorded by every run; artifact scores "
                "alone cannot rank (a generator that learns nothing makes none).")
    info = METRIC_INFO[table.primary]
    direction = "higher" if info.higher_is_better else "lower"
    kinds = sorted({str(run.baseline.get("kind")) for row in table.rows for run in row.runs if run.baseline})
    baseline = (f"; rows no better than their baseline ({', '.join(kinds) or 'the model before training'}) did not "
                "learn and are listed last" if kinds or any(row.baseline is not None for row in table.rows)
                else "; no baseline recorded")
    return (f"Ranked by {info.label} ({direction} is better); rows share a rank unless {table.test} separates "
            f"them{baseline}. A shared rank means \"not separated at 95 %\", not \"equal\"; the Holm-adjusted p-values, "
            "where the build recorded them, are in leaderboard.json and in the page's rank tooltips. A checkerboard cell gives the mean ± std over seeds, or \"none "
            "detected\" when every seed reads 0, with the largest per-seed 95 % bound.")


def _short_stem(stem: str, full: str) -> str:
    """``stem``, or, when longer than file systems allow, its start and a hash of ``full``."""
    if len(stem) <= _MAX_PAGE_STEM:
        return stem
    return f"{stem[:_MAX_PAGE_STEM - 9]}-{hashlib.sha1(full.encode()).hexdigest()[:8]}"


def _scatter_name(table: Table) -> str:
    return f"{ASSETS}/{_short_stem(table.key, table.key)}-scatter.png"


def _scatter_png(table: Table) -> bytes | None:
    """The quality-versus-checkerboard PNG of a ranked table."""
    key = artifact_key(table)
    if table.primary is None or key is None:
        return None
    info = METRIC_INFO[table.primary]
    series = []
    for row in table.rows:
        quality, artifact, r = row.metrics.get(table.primary), row.metrics.get(key), reading(table, row, key)
        scores, values = seed_values(row, key), seed_values(row, table.primary)
        series.append(ScatterRow(
            row.label, row.upsampler, scores if scores and values else (), values if scores and values else (),
            row.learned, artifact and artifact.mean, artifact and artifact.std, quality and quality.mean,
            quality and quality.std, r.bound))
    reference = None
    if table.primary == "psnr" and "psnr_bicubic" in constant_keys(table):
        reference = ("bicubic", table.rows[0].metrics["psnr_bicubic"].mean)
    return quality_artifact_scatter(
        series, f"{info.label} ({'higher' if info.higher_is_better else 'lower'} is better)",
        f"{METRIC_INFO[key].label}, dashed: up to the largest 95 % bound",
        title=f"{table.task} · {table.dataset} · {table.image_size}px", higher_is_better=info.higher_is_better,
        reference=reference)


def _write_scatter(table: Table, out: Path) -> str | None:
    """Write the table's scatter PNG; its path relative to ``out``."""
    png = _scatter_png(table)
    if png is None:
        return None
    name = _scatter_name(table)
    atomic_write_bytes(path_inside(out, *name.split("/")), png)
    return name


def _page_name(task: str, dataset: str) -> str:
    """``<task>-<dataset>.md`` as a file name; a long one is cut and keeps a hash of the full names."""
    return f"{_short_stem(page_stem(task, dataset), f'{task}/{dataset}')}.md"


def _pages(board: Leaderboard) -> dict[str, tuple[str, str]]:
    pages = {(t.task, t.dataset) for t in board.tables} | {(r.task, r.dataset) for r in board.excluded}
    return {_page_name(task, dataset): (task, dataset) for task, dataset in sorted(pages)}


#: The most columns a markdown table has: it must fit GitHub's 890-pixel column.
MARKDOWN_COLUMNS = 8


def _markdown_keys(table: Table) -> list[str]:
    """The metric columns of a markdown table: the quality metric, the checkerboard readings (of the error
    and of the output), the speed; at most :data:`MARKDOWN_COLUMNS` with rank and upsampler. The others are
    named in the caption and shown in the CSV and on the page."""
    keys = [key for key in default_keys(table) if key != "images_per_second"]
    keys += [k for k in BOUNDS if k in metric_keys(table) and k not in keys]
    keys += ["images_per_second"] if "images_per_second" in default_keys(table) else []
    return keys[:MARKDOWN_COLUMNS - 2]


#: Markdown headings shorter than the page's; the units go to the caption.
_SHORT = {"checkerboard": "checkerboard", "residual_checkerboard": "error checkerboard", "psnr": "PSNR",
          "images_per_second": "images/s"}


def _markdown_heading(key: str) -> str:
    info = METRIC_INFO[key]
    return f"{_SHORT.get(key, info.label)} {'↑' if info.higher_is_better else '↓'}"


def _markdown_cell(table: Table, row: Row, key: str) -> str:
    if key in BOUNDS:
        r = reading(table, row, key)
        if r.detected is False:  # "none detected" in the page; the caption says what "none" means here
            return md_text(f"none (< {bound_text(r.bound, r.decimals)})" if r.bound is not None else "none")
        text = r.main(NBSP)
        if r.detected and r.bound is not None:
            text += f" (≤{NBSP}{bound_text(r.bound, r.decimals)})"
        return md_text(text)
    stat = row.metrics.get(key)
    return md_text(stat_text(stat and stat.mean, stat and stat.std, decimals(table, key), NBSP) if stat else "–")


def _markdown_table(table: Table) -> list[str]:
    keys = _markdown_keys(table)
    header = ["rank", "upsampler", *(_markdown_heading(key) for key in keys)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        name = md_code(row.label)
        cells = [_rank_text(row), f"**{name}**" if row.rank == 1 else name, *(_markdown_cell(table, row, k) for k in keys)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _table_caption(table: Table) -> str:
    """Seeds, constants and the columns left out of a markdown table, in sentences."""
    seeds = {tuple(row.seeds) for row in table.rows}
    parts = [f"Seeds {', '.join(map(str, next(iter(seeds))))} in every row." if len(seeds) == 1
             else "Seeds: " + "; ".join(f"{row.label} {', '.join(map(str, row.seeds))}" for row in table.rows) + "."]
    units = [text for key, text in (("psnr", "PSNR in dB"), ("checkerboard", "checkerboard in 8-bit levels"),
                                    ("residual_checkerboard", "error checkerboard: of output − target, in 8-bit levels"))
             if key in _markdown_keys(table)]
    if units:
        text = "; ".join(units)
        parts.append(f"{text[0].upper()}{text[1:]}; \"none\": no seed reads a pattern; \"<\" and \"≤\": the "
                     "largest per-seed 95 % bound.")
    parts.append(constant_caption(table))
    shown = set(_markdown_keys(table)) | set(constant_keys(table))
    left = [METRIC_INFO[key].label for key in metric_keys(table) if key not in shown]
    if table.primary is not None and any(row.baseline is not None for row in table.rows):
        left.append(f"baseline {METRIC_INFO[table.primary].label}")
    if left:
        parts.append(f"Also in leaderboard.csv and index.html: {', '.join(left)}.")
    return " ".join(p for p in parts if p)


def _excluded_lines(records: Sequence[ResultRecord]) -> list[str]:
    """The runs that did not finish, one list item each (a list wraps where a table of messages would not)."""
    if not records:
        return []
    lines = ["", "### Not averaged (did not finish)", ""]
    for r in records:
        lines.append(f"- {md_code(r.run_id)} {md_code(r.upsampler)}, {r.image_size} px, seed {r.seed}: "
                     f"{md_text(r.status)} at step {r.steps} of {r.max_steps} — {md_text(r.message[:200])}")
    return lines


def _page(board: Leaderboard, task: str, dataset: str, command: str) -> str:
    lines = [f"# Leaderboard: {md_text(task)} on {md_text(dataset)}", "",
             f"Generated by {md_code(command)} — do not edit by hand. Mean ± sample std over seeds; "
             "↓ lower is better, ↑ higher is better; the winner is in bold. The browsable page with pictures "
             "and every column is [index.html](index.html).", ""]
    for table in (t for t in board.tables if (t.task, t.dataset) == (task, dataset)):
        steps = table.budget.get("max_steps")
        lines += [f"## {table.image_size}×{table.image_size}{f', {steps} steps' if steps else ''}", "",
                  f"<!-- table {md_text(table.key)} -->", "", md_text(verdict(table)), "",
                  *_markdown_table(table), "", md_text(_table_caption(table)), "",
                  md_text(_ranking_note(table)), "",
                  f"Budget: {md_text(settings_text(table.budget))}.  ",
                  f"Protocol: {md_text(settings_text(table.protocol))}.", ""]
        if _scatter_png_name(table) is not None:
            lines += [f"![quality against checkerboard score]({_scatter_name(table)})", ""]
    lines += _excluded_lines([r for r in board.excluded if (r.task, r.dataset) == (task, dataset)])
    return "\n".join(lines).rstrip() + "\n"


def _scatter_png_name(table: Table) -> str | None:
    return _scatter_name(table) if table.primary is not None and artifact_key(table) is not None else None


def _index(board: Leaderboard, out: Path, command: str, regenerate: str | None) -> str:
    lines = ["# Leaderboards", "", "Generated files — never edit them by hand. The maintainers' command that "
             "regenerates them, from the runs it names (a leaderboard of your own goes into a folder of your own):",
             "", "```bash"]
    if regenerate:
        lines.append(regenerate + "   # runs the grid, then builds")
    lines += [command, "```", "",
              "Without the runs, `python -m lightning_checkerboard.leaderboard rerender --out <this folder>` "
              "rewrites every page, plot and table from this folder's own leaderboard.json and pictures.", "",
              f"[`{_HTML}`]({_HTML}) is the browsable page (open it from the file system: sortable columns, "
              f"sample grids, spectra, W&B links); [`{_CSV}`]({_CSV}) and [`{_JSON}`]({_JSON}) hold the same "
              "numbers.", "", "## Tables", "",
              "One table per task, dataset, resolution, training budget and metric protocol: numbers measured "
              "differently are never ranked together. Each row is one upsampler configuration: mean ± sample "
              "standard deviation over its seeds (n runs; no ± for one run). Each table is ranked by one "
              "quality metric — FID when every run has it, otherwise SWD (PSNR for super-resolution and the autoencoder) — and "
              "rows whose seeds are not separated by Welch's t-test (two-sided, 95 %) share a rank. A row no "
              "better than its recorded baseline (an untrained generator) \"did not learn\" and is listed "
              "last. A checkerboard cell reads \"none detected\" when every seed reads 0, else the mean ± std, with the "
              "largest per-seed 95 % upper bound. Runs that crashed, diverged or "
              "were interrupted are listed apart and never averaged in; a run seen twice counts once.", "", "| page | task | dataset | tables | rows | runs averaged | not averaged |",
              "|---|---|---|---|---|---|---|"]
    for name, (task, dataset) in _pages(board).items():
        tables = [t for t in board.tables if (t.task, t.dataset) == (task, dataset)]
        excluded = sum((r.task, r.dataset) == (task, dataset) for r in board.excluded)
        lines.append(f"| [{name}]({name}) | {md_text(task)} | {md_text(dataset)} | {len(tables)} | {sum(len(t.rows) for t in tables)} "
                     f"| {sum(row.n for t in tables for row in t.rows)} | {excluded} |")
    benchmarks = sorted({p.name for pattern in _BENCHMARK_GLOBS for p in out.glob(pattern)})
    if benchmarks:
        lines += ["", "## Benchmarks", "",
                  "Written by the benchmark and measurement scripts in `recipes/benchmarks/` and "
                  "`recipes/reports/` (see the main README), not by this build:", ""]
        lines += [f"- [{name}]({name})" for name in benchmarks]
    experiments = sorted({p.name for pattern in _EXPERIMENT_GLOBS for p in out.glob(pattern)})
    if experiments:
        lines += ["", "## The article's experiments", "",
                  "Written by `recipes/reports/init_probe.py`, `gradient_probe.py`, `style_figure.py`, "
                  "`super_resolution_report.py` and `article_report.py` "
                  "(see the main README):", ""]
        lines += [f"- [{name}]({name})" for name in experiments]
    if board.duplicates:
        lines += ["", f"Runs seen more than once (counted once): {', '.join(map(md_code, board.duplicates))}."]
    if board.rejected:
        lines += ["", "## Rejected files", ""] + [f"- {md_text(reason)}" for _, reason in board.rejected]
    return "\n".join(lines) + "\n"


def _csv(board: Leaderboard) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    metric_columns = [f"{key}_{part}" for key, _, _ in METRICS for part in ("mean", "std", "n")]
    writer.writerow(["table", "task", "dataset", "image_size", "budget", "protocol", "primary", "rank", "learned",
                     "upsampler", "options", "stages", "n", "seeds", "run_ids", *metric_columns])
    for table in board.tables:
        for row in table.rows:
            numbers = []
            for key, _, _ in METRICS:
                stat = row.metrics[key]
                numbers += ["", "", 0] if stat is None else [stat.mean, "" if stat.std is None else stat.std, stat.n]
            cells = [table.key, table.task, table.dataset, table.image_size,
                     json.dumps(table.budget, sort_keys=True), json.dumps(table.protocol, sort_keys=True),
                     table.primary or "", "" if row.rank is None else row.rank,
                     "" if row.learned is None else row.learned, row.upsampler,
                     json.dumps(row.options, sort_keys=True), " ".join(row.stages),
                     row.n, " ".join(map(str, row.seeds)), " ".join(r.run_id for r in row.runs), *numbers]
            writer.writerow([csv_cell(cell) for cell in cells])
    return buffer.getvalue()


class OutputFolderError(UsageError, ValueError):
    """An ``--out`` folder the build must not write into as it is: one line saying why and what to do.

    A :class:`~lightning_checkerboard.cli.UsageError`, so a recipe that builds a leaderboard (under
    :func:`~lightning_checkerboard.cli.run_cli`) ends with that line and exit code 2.
    """


@dataclass
class _Previous:
    """What an earlier build left in the output folder: the files it wrote (relative, POSIX) and its run ids."""

    files: set[str] = field(default_factory=set)
    run_ids: set[str] = field(default_factory=set)


# The only names a build writes: pages and tables at the top, scatter plots in assets/, and each run's
# two pictures in assets/<run id>/. A manifest entry of any other shape is ignored, never deleted.
_GENERATED = re.compile(
    rf"[^/]+\.(?:md|csv|json|html)|{re.escape(ASSETS)}/[^/]+-scatter\.png|{re.escape(ASSETS)}/[^/]+/(?:final|spectra|tile|crop|error)\.png")


def _relative_names(values: Any) -> set[str]:
    """The entries of ``values`` that name a file the build writes: relative (no ``..``, not absolute, no
    empty part) and of one of the generated shapes (a page, a scatter plot, a run's picture)."""
    names = set()
    for value in values if isinstance(values, (list, tuple, set)) else []:
        if isinstance(value, str) and value and not value.startswith("/") and "\\" not in value \
                and all(part not in ("", ".", "..") for part in value.split("/")) and _GENERATED.fullmatch(value):
            names.add(value)
    return names


def _strings(values: Any) -> set[str]:
    return {v for v in values if isinstance(v, str)} if isinstance(values, list) else set()


def _read_json(path: Path, out: Path, max_bytes: int) -> Any:
    """``path``'s JSON when it is a regular file inside ``out`` of at most ``max_bytes``; else ``None``."""
    try:
        return json.loads(read_bytes(path, root=out, max_bytes=max_bytes).decode("utf-8"))
    except (UntrustedFileError, ValueError, RecursionError):
        return None


def _from_manifest(payload: Any) -> _Previous | None:
    if not isinstance(payload, dict) or payload.get("format") != _MANIFEST_FORMAT:
        return None
    return _Previous(_relative_names(payload.get("files")), _strings(payload.get("run_ids")))


def _from_legacy_json(payload: Any) -> _Previous | None:
    """The files and runs of a folder written before the manifest existed, from its ``leaderboard.json``.

    Such a folder is recognised by that file's generated shape (every key the build writes, the
    build command first) and accepted once: the build that reads it writes the manifest.
    """
    keys = ("command", "tables", "excluded", "duplicates", "rejected", "assets", "files")
    if not isinstance(payload, dict) or not all(key in payload for key in keys) or not isinstance(
            payload["command"], str) or not isinstance(payload["tables"], list):
        return None
    files = {"README.md", _CSV, _JSON, _HTML}
    files |= {name for name in _relative_names(payload["files"]) if "/" not in name and name.endswith(".md")}
    assets = payload["assets"] if isinstance(payload["assets"], dict) else {}
    files |= {name for kinds in assets.values() if isinstance(kinds, dict)
              for name in _relative_names(list(kinds.values())) if name.startswith(f"{ASSETS}/")}
    run_ids: set[str] = set()
    for table in payload["tables"]:
        if not isinstance(table, dict):
            continue
        key = table.get("key")
        if isinstance(key, str) and table.get("primary") is not None:
            files |= _relative_names([f"{ASSETS}/{_short_stem(key, key)}-scatter.png"])
        for row in table.get("rows") if isinstance(table.get("rows"), list) else []:
            run_ids |= _strings(row.get("run_ids")) if isinstance(row, dict) else set()
    excluded = payload["excluded"] if isinstance(payload["excluded"], list) else []
    run_ids |= {r["run_id"] for r in excluded if isinstance(r, dict) and isinstance(r.get("run_id"), str)}
    return _Previous(files, run_ids)


def _previous(out: Path) -> _Previous | None:
    """What the earlier build in ``out`` wrote: empty for a new or empty folder, ``None`` when the folder
    holds files but no leaderboard (no readable manifest, no generated ``leaderboard.json``).

    Raises:
        OutputFolderError: ``out`` exists and is not a folder.
    """
    if not os.path.lexists(out):
        return _Previous()
    if not out.is_dir():
        kind = describe_kind(os.stat(out).st_mode) if out.exists() else "a link that cannot be followed"
        raise OutputFolderError(f"--out {out}: {kind}, not a folder; choose a folder for the leaderboard.")
    if os.path.lexists(out / MANIFEST):
        return _from_manifest(_read_json(out / MANIFEST, out, _MAX_MANIFEST_BYTES))
    if os.path.lexists(out / _JSON):
        legacy = _from_legacy_json(_read_json(out / _JSON, out, _MAX_MANIFEST_BYTES))
        if legacy is not None:
            return legacy
    with os.scandir(out) as listing:
        return None if any(True for _ in listing) else _Previous()


def _planned(board: Leaderboard, run_dirs: dict[str, Path | None]) -> set[str]:
    """Every file this build may write, relative to the output folder (thumbnails that fail are not)."""
    files = {"README.md", _CSV, _JSON, _HTML, *_pages(board)}
    files |= {name for name in map(_scatter_png_name, board.tables) if name is not None}
    for table in board.tables:
        for row in table.rows:
            for run in row.runs:
                if run_dirs.get(run.run_id) is not None:
                    files |= set(thumbnail_paths(run.run_id).values())
    return files


def _board_run_ids(board: Leaderboard) -> set[str]:
    return {run.run_id for t in board.tables for row in t.rows for run in row.runs} | {
        r.run_id for r in board.excluded}


def _check_out(out: Path, previous: _Previous | None, board: Leaderboard, planned: set[str], force: bool) -> None:
    """Refuse, unless ``force``, a folder that is not a leaderboard, one whose rows would be dropped, and a
    file in the way that the leaderboard did not write."""
    if force:
        return
    if previous is None:
        raise OutputFolderError(
            f"--out {out}: a folder that holds other files and no leaderboard (no readable {MANIFEST}); "
            "choose a new or empty folder, or pass --force to write the leaderboard's files into it (files of "
            "the same names are replaced, nothing else is touched).")
    dropped = sorted(previous.run_ids - _board_run_ids(board))
    if dropped:
        shown = ", ".join(dropped[:3]) + (", …" if len(dropped) > 3 else "")
        raise OutputFolderError(
            f"--out {out}: holds a leaderboard with {len(dropped)} run(s) that this build did not collect "
            f"({shown}); build from their folders as well (--from repeats), choose another --out, or pass "
            "--force to replace that leaderboard.")
    clash = sorted(name for name in planned - previous.files if os.path.lexists(out / name))
    if clash:
        raise OutputFolderError(
            f"--out {out}: {clash[0]}{f' (and {len(clash) - 1} more)' if len(clash) > 1 else ''} was not "
            "written by the leaderboard; move it, choose another --out, or pass --force to replace it.")


def _write_manifest(out: Path, files: set[str], run_ids: set[str]) -> Path:
    payload = {"format": _MANIFEST_FORMAT, "version": 1,
               "about": "Files written by python -m lightning_checkerboard.leaderboard build; a rebuild "
                        "replaces or deletes these and only these.",
               "files": sorted(files), "run_ids": sorted(run_ids)}
    return atomic_write_json(path_inside(out, MANIFEST), payload)


def _remove_stale(out: Path, stale: set[str]) -> None:
    """Delete the files of ``stale`` (relative names) that are still regular files inside ``out``, then
    the folders under ``assets/`` they leave empty; never a link, a folder or anything outside."""
    folders = set()
    for name in sorted(stale):
        try:
            path = path_inside(out, *name.split("/"))
        except OutsideFolderError:
            continue
        try:
            # Every folder on the way must be a real folder: a link inside out could lead to other files.
            if any(os.path.islink(folder) for folder in path.parents if folder != out and out in folder.parents):
                continue
            if stat.S_ISREG(os.lstat(path).st_mode):
                path.unlink()
                folders.add(path.parent)
        except OSError:
            continue
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if folder != out / ASSETS and folder.parent == out / ASSETS and not folder.is_symlink():
            try:
                folder.rmdir()  # only when empty
            except OSError:
                pass


def _write_pages(board: Leaderboard, out: Path, command: str, regenerate: str | None,
                 assets: dict[str, dict[str, str]], strengths: dict[str, float]) -> list[str]:
    """Write the scatter plots, pages, index, CSV, JSON and HTML; every name written, with ``assets``'."""
    names = [name for kinds in assets.values() for name in kinds.values()]
    scatters = {}
    for table in board.tables:
        scatter = _write_scatter(table, out)
        if scatter:
            names.append(scatter)
            scatters[table.key] = scatter
    pages = _pages(board)
    for name, (task, dataset) in pages.items():
        atomic_write_text(path_inside(out, name), _page(board, task, dataset, command))
    atomic_write_text(path_inside(out, "README.md"), _index(board, out, command, regenerate))
    atomic_write_text(path_inside(out, _CSV), _csv(board))
    payload = {"command": command, **board.to_dict(), "assets": assets, "files": ["README.md", *pages]}
    atomic_write_json(path_inside(out, _JSON), payload)
    atomic_write_text(path_inside(out, _HTML), html_page(board, assets, command, scatters, strengths))
    return names + [*pages, "README.md", _CSV, _JSON, _HTML]


def render(board: Leaderboard, out: str | os.PathLike, *, command: str, regenerate: str | None = None,
           run_dirs: dict[str, Path | None] | None = None, force: bool = False) -> list[Path]:
    """Write ``board`` into ``out`` and return the files written.

    The folder is marked as a leaderboard by a manifest, :data:`MANIFEST`, that lists every file the
    build wrote (relative to ``out``) and the run ids its tables hold. A rebuild replaces those files
    and deletes the ones it no longer writes, only while they are regular files inside ``out``;
    nothing else in the folder is ever touched. A folder written before the manifest existed is
    recognised once by its generated ``leaderboard.json``.

    Args:
        board: the aggregated leaderboard. Pictures that cannot be read are added to its
            ``rejected`` list (and so to the index's "Rejected files").
        out: the output folder (created).
        command: the build command, printed in every file.
        regenerate: a command that reruns the runs as well, for the index.
        run_dirs: run directory by run id, for sample-grid and spectra thumbnails.
        force: write even into a folder that holds other files and no leaderboard, replace a
            leaderboard that holds runs this build does not have, and replace files in the way.

    Raises:
        OutputFolderError: without ``force``: ``out`` holds files but no leaderboard; it holds a
            leaderboard with runs missing from ``board`` (their rows would be dropped); or a file the
            build would write exists and was not written by it. With or without: ``out`` is not a folder.
        OutsideFolderError: a page would land outside ``out`` (names are slugs, so only a symbolic
            link inside ``out`` that points elsewhere does that). A run whose thumbnails would land
            outside ``out`` only loses its pictures.
    """
    out = Path(out)
    run_dirs = run_dirs or {}
    previous = _previous(out)
    planned = _planned(board, run_dirs)
    _check_out(out, previous, board, planned, force)
    previous = previous or _Previous()
    out.mkdir(parents=True, exist_ok=True)
    # Listed before anything is written: a build that stops part-way leaves only files a rebuild owns.
    _write_manifest(out, previous.files | planned, previous.run_ids)
    records = [run for table in board.tables for row in table.rows for run in row.runs]
    problems: list[tuple[str, str]] = []
    strengths: dict[str, float] = {}
    assets = {r.run_id: copy_thumbnails(r, run_dirs.get(r.run_id), out, problems, strengths) for r in records}
    board.rejected.extend(problems)
    names = _write_pages(board, out, command, regenerate, assets, strengths)
    _remove_stale(out, (previous.files | planned) - set(names))
    manifest = _write_manifest(out, set(names), _board_run_ids(board))
    return [out / name for name in sorted(names)] + [manifest]
