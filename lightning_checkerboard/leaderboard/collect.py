"""Collect result records from local run directories or from a W&B project.

A local source is a folder searched recursively for ``result.json`` (or one such file); a W&B source
is ``wandb:<entity>/<project>``, read through the public API, each run's summary (``final/<metric>``,
``status``, ``steps``, ``throughput/*``, ``protocol/*``, mirrored there by
:class:`~lightning_checkerboard.callbacks.ResultRecorder`) and config turned back into a
:class:`~lightning_checkerboard.records.ResultRecord`. Files that are not records this version can
read are *rejected* with the reason, not dropped silently and not fatal. Both kinds of source go
through the same checks (:meth:`~lightning_checkerboard.records.ResultRecord.from_dict`): a record
from a W&B project is as untrusted as a file from someone else's folder. A local folder is walked
without following folder links, and nothing outside it is read (:func:`collect_local`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning_checkerboard._untrusted import UntrustedFileError, describe_kind, resolve_inside
from lightning_checkerboard.loggers import DEFAULT_WANDB_URL, wandb_server_problem
from lightning_checkerboard.records import (
    RECORD_FILENAME,
    SCHEMA_VERSION,
    STATUSES,
    RecordError,
    ResultRecord,
    read_record,
)

__all__ = [
    "WANDB_PREFIX",
    "CollectError",
    "Collected",
    "Collection",
    "collect",
    "collect_local",
    "collect_wandb",
    "record_from_wandb_run",
]

WANDB_PREFIX = "wandb:"
#: A run directory's picture folders, which the leaderboard reads thumbnails from.
_RUN_PICTURE_FOLDERS = ("samples", "spectra")
# W&B run states (``run.state``) for runs whose summary has no recorder status.
_WANDB_STATES = {
    "finished": "finished",
    "running": "running",
    "pending": "running",
    "crashed": "failed",
    "failed": "failed",
    "killed": "interrupted",
    "preempted": "interrupted",
}


class CollectError(Exception):
    """A source that cannot be read at all (missing folder, unreachable W&B): one line for the user."""


@dataclass
class Collected:
    """One record and where it came from.

    Attributes:
        record: the result record.
        source: the ``result.json`` path or the W&B run path.
        run_dir: the run directory for local records (sample grids, spectra), else ``None``.
    """

    record: ResultRecord
    source: str
    run_dir: Path | None = None


@dataclass
class Collection:
    """Everything read from the sources.

    Attributes:
        runs: the records, in the order found (duplicates included; aggregation counts them once).
        rejected: ``(source, reason)`` for every file or run that is not a readable record, every run
            whose pictures link out of its run directory, and every folder link not searched.
    """

    runs: list[Collected] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def extend(self, other: "Collection") -> None:
        self.runs.extend(other.runs)
        self.rejected.extend(other.rejected)


def _record_files(root: Path, found: Collection) -> list[Path]:
    """Every ``result.json`` below ``root``, walking real folders only.

    Folder links are never followed: one that stays inside ``root`` leads to a folder the walk reaches
    anyway, and one that leaves ``root`` (or loops) is listed in ``found.rejected``, never searched. So
    the walk ends on any tree and never reads outside ``root``. A ``result.json`` that is itself a link
    is returned, for :func:`~lightning_checkerboard.records.read_record` to judge.
    """
    files: list[Path] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as err:
            found.rejected.append((str(folder), f"{folder}: cannot be listed ({err.strerror or err}); not searched."))
            continue
        for entry in entries:
            path = Path(entry.path)
            try:
                is_link, is_dir = entry.is_symlink(), entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_link:
                if entry.name == RECORD_FILENAME:
                    files.append(path)
                elif entry.name in _RUN_PICTURE_FOLDERS and any(e.name == RECORD_FILENAME for e in entries):
                    continue  # a run's own picture folder: judged with the run
                elif os.path.isdir(path) or not os.path.exists(path):
                    try:
                        resolve_inside(path, root)
                    except UntrustedFileError as err:
                        found.rejected.append((str(path), f"{err} (a folder link; not searched)"))
            elif is_dir:
                if entry.name == RECORD_FILENAME:
                    found.rejected.append((str(path), f"{path}: a folder, not a regular file; not a record."))
                stack.append(path)
            elif entry.name == RECORD_FILENAME:
                files.append(path)
    return sorted(files)


def _picture_link_leaving(run_dir: Path) -> str | None:
    """Why the run's pictures cannot be trusted: the first of ``samples/``, ``samples/final.png``,
    ``spectra/`` and ``spectra/*.png`` whose links lead out of ``run_dir``; ``None`` when none does."""
    spectra = run_dir / "spectra"
    paths = [run_dir / "samples", run_dir / "samples" / "final.png", spectra]
    try:
        with os.scandir(resolve_inside(spectra, run_dir)) as listing:
            paths += sorted(spectra / entry.name for entry in listing if entry.name.endswith(".png"))
    except (OSError, UntrustedFileError):  # no spectra folder, or one the loop below refuses
        pass
    for path in paths:
        if os.path.lexists(path):
            try:
                resolve_inside(path, run_dir)
            except UntrustedFileError as err:
                return str(err)
    return None


def collect_local(path: str | os.PathLike) -> Collection:
    """Every ``result.json`` below ``path`` (a folder, searched recursively, or one file).

    Everything read is untrusted. A record must be a regular file inside its run directory (the folder
    that holds it), read with a bounded read; the walk follows no folder link (one that leaves ``path``
    or loops is listed as rejected); a run whose ``samples/``, ``samples/final.png``, ``spectra/`` or
    spectra pictures link out of its run directory is rejected whole, with the reason. Nothing is
    read from outside ``path``.

    Raises:
        CollectError: ``path`` does not exist, or is neither a folder nor a regular file.
    """
    path = Path(path)
    found = Collection()
    if path.is_dir():
        files = _record_files(path, found)
    elif path.is_file():
        files = [path]  # a link that leaves its folder is refused by read_record, with the reason
    elif os.path.lexists(path):
        kind = describe_kind(os.stat(path).st_mode) if os.path.exists(path) else "a link that cannot be followed"
        raise CollectError(f"--from {str(path)!r}: {kind}, not a runs directory or a {RECORD_FILENAME}")
    else:
        raise CollectError(f"--from {str(path)!r}: no such directory or file (expected a runs directory, "
                           f"a {RECORD_FILENAME} or {WANDB_PREFIX}<entity>/<project>)")
    for file in files:
        try:
            record = read_record(file)
        except RecordError as err:
            found.rejected.append((str(file), str(err)))
            continue
        leaving = _picture_link_leaving(file.parent)
        if leaving is not None:
            found.rejected.append((str(file), f"{leaving} The run {record.run_id} is not ranked."))
            continue
        found.runs.append(Collected(record, str(file), file.parent))
    return found


def _plain(mapping: Any) -> dict[str, Any]:
    """A W&B summary or config as a plain dict (old configs wrap values as ``{"value": …}``)."""
    if mapping is None:
        return {}
    items = mapping.items() if hasattr(mapping, "items") else dict(mapping).items()
    plain = {}
    for key, value in items:
        if not isinstance(key, str):
            raise RecordError(f"non-string key {key!r:.60} in a W&B summary or config.")
        if isinstance(value, Mapping) and "value" in value and set(value) <= {"value", "desc"}:
            value = value["value"]
        plain[key] = value
    return plain


def _prefixed(summary: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {key[len(prefix):]: value for key, value in summary.items() if key.startswith(prefix)}


def _tags(tags: Any) -> dict[str, str]:
    """``{"task": "gan", …}`` from ``task:gan``-style tags; other tags (and non-strings) are ignored."""
    pairs = (tag.split(":", 1) for tag in (tags if isinstance(tags, (list, tuple)) else []) if isinstance(tag, str))
    return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}


def record_from_wandb_run(run: Any) -> ResultRecord:
    """Rebuild a result record from a W&B run (``wandb.Api().runs(...)`` item).

    The numbers come from the summary keys the recorder writes, the settings from the run config
    and the task and dataset from the run tags (``task:gan``, ``dataset:photos``). The record is
    checked like a local one (:meth:`~lightning_checkerboard.records.ResultRecord.from_dict`).

    Raises:
        RecordError: the run is not a lightning-checkerboard run (no ``task:`` tag or a missing
            setting), or a field fails the record checks.
    """
    path = "/".join(map(str, run.path)) if isinstance(run.path, (list, tuple)) else str(run.path)
    source = f"{WANDB_PREFIX}{path[:200]}"
    config, summary = _plain(run.config), _plain(run.summary)
    tags = _tags(run.tags)
    task = tags.get("task") or config.get("task")
    if not task:
        raise RecordError(f"{source}: no task:<name> tag; not a lightning-checkerboard run.")
    missing = [key for key in ("image_size", "upsampler", "seed", "max_steps") if key not in config]
    if missing:
        raise RecordError(f"{source}: config has no {', '.join(missing)}.")
    status = summary.get("status")
    if status not in STATUSES or status == "running":
        # A run killed without warning never wrote its final status: trust W&B's state then.
        status = _WANDB_STATES.get(str(getattr(run, "state", "")), "failed" if status is None else status)
    options = {"padding": config["padding"]} if config.get("padding") else {}
    payload = {
        "run_id": getattr(run, "id", None),
        "task": task,
        "status": status,
        "dataset": tags.get("dataset") or config.get("dataset", ""),
        "image_size": config["image_size"],
        "upsampler": config["upsampler"],
        "upsampler_stages": config.get("stages") or [],
        "upsampler_options": options,
        "seed": config["seed"],
        "max_steps": config["max_steps"],
        "steps": summary.get("steps") or 0,
        "protocol": _prefixed(summary, "protocol/"),
        "metrics": _prefixed(summary, "final/"),
        "baseline": _prefixed(summary, "baseline/"),
        "throughput": _prefixed(summary, "throughput/"),
        "config": config,
        "message": "" if status == "finished" else f"W&B state {str(getattr(run, 'state', 'unknown'))[:40]}",
        "wandb": {"path": path, "mode": "online", "url": getattr(run, "url", None)},
        "package_version": config.get("package_version", ""),
        "git_revision": getattr(run, "commit", None),
        "started_at": getattr(run, "created_at", "") or "",
        "finished_at": None,
        "schema_version": SCHEMA_VERSION,
    }
    return ResultRecord.from_dict(payload, source)


def _from_wandb_runs(runs: Iterable[Any], project: str) -> Collection:
    """The records of W&B ``runs`` (of the project ``entity/project``); runs that fail the checks are rejected."""
    found = Collection()
    for run in runs:
        try:
            record = record_from_wandb_run(run)
        except (RecordError, TypeError, ValueError) as err:
            found.rejected.append((f"{WANDB_PREFIX}{project}/{str(getattr(run, 'id', '?'))[:80]}", str(err)))
            continue
        found.runs.append(Collected(record, f"{WANDB_PREFIX}{record.wandb['path']}"))
    return found


def collect_wandb(path: str, filters: dict[str, Any] | None = None, timeout: float = 10.0) -> Collection:
    """Every run of the W&B project ``path`` (``entity/project``) that matches ``filters``.

    Args:
        path: ``entity/project``.
        filters: a W&B (MongoDB-style) run filter, e.g. ``{"tags": "task:gan"}``.
        timeout: seconds to wait for the server before giving up.

    Raises:
        CollectError: a malformed path, no reachable server, no API key, or an API error.
    """
    parts = path.split("/")
    if len(parts) != 2 or not all(parts):
        raise CollectError(f"--from {WANDB_PREFIX}{path}: expected {WANDB_PREFIX}<entity>/<project>")
    base_url = os.environ.get("WANDB_BASE_URL") or DEFAULT_WANDB_URL
    # The API client retries for minutes on a dead network; a plain connection attempt fails in seconds.
    problem = wandb_server_problem(base_url, timeout)
    if problem is not None:
        raise CollectError(f"--from {WANDB_PREFIX}{path}: {problem}; build from local run directories instead "
                           "(--from runs)")
    try:
        import wandb

        runs = wandb.Api(timeout=max(1, round(timeout))).runs(path, filters=filters or {})
        found = _from_wandb_runs(runs, path)
    except Exception as err:  # wandb raises its own error types for keys, permissions and HTTP
        first_line = (str(err).strip().splitlines() or [""])[0]
        raise CollectError(f"--from {WANDB_PREFIX}{path}: {type(err).__name__}: {first_line}") from None
    return found


def collect(sources: Iterable[str], filters: dict[str, Any] | None = None, timeout: float = 10.0) -> Collection:
    """Records from every source: a local path or ``wandb:<entity>/<project>``.

    Raises:
        CollectError: a source that cannot be read at all.
    """
    found = Collection()
    for source in sources:
        if source.startswith(WANDB_PREFIX):
            found.extend(collect_wandb(source[len(WANDB_PREFIX):], filters=filters, timeout=timeout))
        else:
            found.extend(collect_local(source))
    return found
