"""The versioned result record every run leaves behind: written by callbacks, read by the leaderboard.

One JSON file per run (``result.json`` in the run directory, written atomically) carries the same
numbers as the run's W&B summary. A record says what was trained (task, dataset, resolution, the
upsampler of every stage), how it was measured (the metric protocol: sample counts, score levels,
FID extractor), what came out (metrics, throughput) and how the run ended (``status``).

Records are read from folders and W&B projects that other people write to, so every record read
(:meth:`ResultRecord.from_dict`, which :func:`read_record` and the W&B collector both go through) is
checked field by field before anything uses it, and rejected with a one-line :class:`RecordError`
otherwise:

- ``run_id`` matches :data:`RUN_ID_PATTERN` (letters, digits, ``-`` and ``_``; it names files);
- ``status`` is one of :data:`STATUSES`;
- names (task, dataset, upsampler, stages, keys of every mapping, versions, times) are printable
  one-line strings of at most :data:`MAX_NAME_CHARS` characters; other strings (the message,
  config values) hold at most :data:`MAX_TEXT_CHARS`;
- counts and sizes are integers in range; metrics and throughput are numbers or ``null``;
- the W&B link is an ``http(s)`` URL;
- free-form settings (config, protocol, options) are JSON data nested at most :data:`MAX_NESTING`
  deep, with at most :data:`MAX_ITEMS` entries in the whole record; a file holds at most
  :data:`MAX_RECORD_BYTES`.

A non-finite number (NaN, ±inf) anywhere in a record reads as ``null`` and the record is kept: that
is how records are written (JSON has no NaN), and it is what "not measured" means everywhere else.

Schema history:
    1: first version.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from lightning_checkerboard._io import atomic_write_json
from lightning_checkerboard._record_checks import (
    MAX_ITEMS,
    MAX_NAME_CHARS,
    MAX_NESTING,
    MAX_RECORD_BYTES,
    MAX_TEXT_CHARS,
    RUN_ID_PATTERN,
    STATUSES,
    RecordError,
    checked_fields,
)
from lightning_checkerboard._untrusted import UntrustedFileError, read_bytes, resolve_inside

__all__ = [
    "MAX_ITEMS",
    "MAX_NAME_CHARS",
    "MAX_NESTING",
    "MAX_RECORD_BYTES",
    "MAX_TEXT_CHARS",
    "RECORD_FILENAME",
    "RUN_ID_PATTERN",
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
        task: ``"gan"``, ``"style_transfer"``, ``"super_resolution"`` or ``"autoencoder"`` (the recipe that ran).
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
        baseline: the same quality metrics for a trivial baseline the run must beat, with ``kind``
            naming it (``"model before training"``: the metric callbacks measure the model before
            its first step).
            The leaderboard marks a run no better than its baseline "did not learn".
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
    baseline: dict[str, Any] = field(default_factory=dict)
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

        Every field is checked as the module describes; NaN and ±inf read as ``None``.

        Raises:
            RecordError: a schema newer than this version, a missing field, or a bad value
                (one line: the source, the field, what it must be and what it is).

        Example:
            >>> payload = dict(run_id="r1", task="gan", status="finished", dataset="photos", image_size=32,
            ...                upsampler="deconv", upsampler_stages=["deconv"] * 3, seed=0, max_steps=10,
            ...                metrics={"checkerboard": float("nan")}, schema_version=SCHEMA_VERSION)
            >>> ResultRecord.from_dict(payload).metrics
            {'checkerboard': None}
            >>> ResultRecord.from_dict({**payload, "run_id": "../escaped"}, source="runs/x/result.json")
            Traceback (most recent call last):
            ...
            lightning_checkerboard.records.RecordError: runs/x/result.json: field run_id must be 1 to 128 letters, digits, '-' or '_'; got '../escaped'.
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
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted(required - set(payload))
        if missing:
            raise RecordError(f"{source}: missing field(s) {', '.join(missing)}.")
        return cls(**checked_fields(payload, source))


# ---- Checks on records read from disk or W&B -------------------------------------------------



def write_record(record: ResultRecord, run_dir: str | os.PathLike) -> Path:
    """Write ``record`` atomically to ``run_dir/result.json`` and return the path."""
    return atomic_write_json(Path(run_dir) / RECORD_FILENAME, record.to_dict())


def read_record(path: str | os.PathLike, root: str | os.PathLike | None = None) -> ResultRecord:
    """Read a record from a ``result.json`` file or a run directory that holds one.

    The file is untrusted: it must be a regular file that lies, once symbolic links are followed,
    inside ``root`` (by default the run directory, the folder that holds it), and at most
    :data:`MAX_RECORD_BYTES` bytes are read, counted as they arrive (``/dev/zero`` reports a size of
    0). A FIFO or a device is refused without waiting on it.

    Args:
        path: a ``result.json`` or the run directory that holds one.
        root: the folder the record must stay in; ``None`` for the run directory.

    Raises:
        RecordError: a missing, unreadable, malformed, oversized or incompatible file, a link that
            leaves ``root``, something other than a regular file, or a bad field.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_FILENAME
    root = path.parent if root is None else Path(root)
    try:
        # A size known up front gives the clearer message; the bounded read is what enforces it.
        info = os.stat(resolve_inside(path, root))
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_RECORD_BYTES:
            raise RecordError(f"{path}: {info.st_size} bytes, more than a record may hold ({MAX_RECORD_BYTES}).")
        data = read_bytes(path, root=root, max_bytes=MAX_RECORD_BYTES)
    except FileNotFoundError:
        raise RecordError(f"{path}: no result record.") from None
    except UntrustedFileError as err:
        if not os.path.lexists(path):
            raise RecordError(f"{path}: no result record.") from None
        raise RecordError(str(err).replace("such a file may hold", "a record may hold")) from None
    except OSError as err:
        raise RecordError(f"{path}: unreadable ({err.strerror or err}).") from None
    try:
        payload = json.loads(data.decode("utf-8"))
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError both are
        raise RecordError(f"{path}: unreadable ({err}).") from None
    except RecursionError:  # json nests by recursion: thousands of brackets end it
        raise RecordError(f"{path}: unreadable (nested too deep).") from None
    return ResultRecord.from_dict(payload, source=str(path))
