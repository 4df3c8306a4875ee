"""The versioned result record every run leaves behind: written by callbacks, read by the leaderboard.

One JSON file per run (``result.json`` in the run directory, written atomically) carries the same
numbers as the run's W&B summary. A record says what was trained (task, dataset, resolution, the
upsampler of every stage), how it was measured (the metric protocol: sample counts, score levels,
FID extractor), what came out (metrics, throughput) and how the run ended (``status``).

Schema history:
    1: first version.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from lightning_checkerboard._io import atomic_write_json

__all__ = [
    "RECORD_FILENAME",
    "SCHEMA_VERSION",
    "STATUSES",
    "RecordError",
    "ResultRecord",
    "git_revision",
    "read_record",
    "utc_now",
    "write_record",
]

SCHEMA_VERSION = 1
RECORD_FILENAME = "result.json"
#: ``running`` is written when training starts, so a run killed without warning still leaves a
#: record; the leaderboard averages only ``finished`` runs.
STATUSES = ("running", "finished", "failed", "interrupted", "diverged")


class RecordError(ValueError):
    """A result file that is not a record this version can read."""


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string (seconds)."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def git_revision(path: str | os.PathLike | None = None) -> str | None:
    """The git commit of the working tree at ``path`` (``+dirty`` if modified), or ``None``."""
    cwd = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{rev}+dirty" if dirty else rev


@dataclass
class ResultRecord:
    """One run's result. Field names are the JSON keys.

    Attributes:
        run_id: unique id of the run (the W&B run id when W&B is used).
        task: ``"gan"`` or ``"style_transfer"``.
        status: one of :data:`STATUSES`.
        dataset: canonical dataset name (``photos``, ``cifar10``, ``folder:/abs/path``…).
        dataset_fingerprint: hash of the data and its preparation (keys FID caches).
        image_size: output resolution in pixels.
        upsampler: the spec as given (``"nearest_conv"`` or a comma list).
        upsampler_stages: the registered name of every stage, in order.
        upsampler_options: options passed to every stage (e.g. ``{"padding": "reflect"}``).
        seed: the run's seed.
        steps: optimisation steps completed.
        max_steps: steps requested.
        protocol: how the metrics were measured: ``eval_samples``, ``levels``, ``fid_samples``,
            ``fid_extractor`` … Runs are compared only within one protocol.
        metrics: final metric values (``None`` for unavailable ones).
        throughput: ``train_seconds``, ``images_per_second``, ``wall_seconds``.
        config: every setting of the run.
        message: why a run did not finish (empty when it did).
        wandb: ``{"path": "entity/project/id", "mode": "online"|"offline", "url": …}`` or ``None``.
        package_version: lightning-checkerboard version.
        git_revision: commit of the code, ``None`` outside git.
        started_at: ISO-8601 UTC.
        finished_at: ISO-8601 UTC, ``None`` while running.
        schema_version: :data:`SCHEMA_VERSION` when written.
    """

    run_id: str
    task: str
    status: str
    dataset: str
    image_size: int
    upsampler: str
    upsampler_stages: list[str]
    seed: int
    max_steps: int
    steps: int = 0
    dataset_fingerprint: str = ""
    upsampler_options: dict[str, Any] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    throughput: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    wandb: dict[str, Any] | None = None
    package_version: str = ""
    git_revision: str | None = None
    started_at: str = field(default_factory=utc_now)
    finished_at: str | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise RecordError(f"status must be one of {', '.join(STATUSES)}; got {self.status!r}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any], source: str = "record") -> "ResultRecord":
        """Build a record from its JSON form, migrating older schemas.

        Raises:
            RecordError: a schema newer than this version, a missing field, or a bad value.
        """
        if not isinstance(payload, dict):
            raise RecordError(f"{source}: expected a JSON object, got {type(payload).__name__}.")
        version = payload.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise RecordError(f"{source}: no integer schema_version; not a lightning-checkerboard record.")
        if version < 1:
            raise RecordError(
                f"{source}: schema_version {version} predates the first published schema (1) and cannot be "
                "migrated; rerun the run to get a current record."
            )
        if version > SCHEMA_VERSION:
            raise RecordError(
                f"{source}: schema_version {version} is newer than this version reads ({SCHEMA_VERSION}); "
                "upgrade lightning-checkerboard."
            )
        # Version 1 is the first; migrations from older versions go here, oldest first.
        known = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted(required - set(payload))
        if missing:
            raise RecordError(f"{source}: missing field(s) {', '.join(missing)}.")
        return cls(**{key: value for key, value in payload.items() if key in known})


def write_record(record: ResultRecord, run_dir: str | os.PathLike) -> Path:
    """Write ``record`` atomically to ``run_dir/result.json`` and return the path."""
    return atomic_write_json(Path(run_dir) / RECORD_FILENAME, record.to_dict())


def read_record(path: str | os.PathLike) -> ResultRecord:
    """Read a record from a ``result.json`` file or a run directory that holds one.

    Raises:
        RecordError: an unreadable, malformed or incompatible file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_FILENAME
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(f"{path}: no result record.") from None
    except (OSError, ValueError) as err:
        raise RecordError(f"{path}: unreadable ({err}).") from None
    return ResultRecord.from_dict(payload, source=str(path))
