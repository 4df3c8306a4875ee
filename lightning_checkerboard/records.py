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
import math
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lightning_checkerboard._io import atomic_write_json

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
#: ``running`` is written when training starts, so a run killed without warning still leaves a
#: record; the leaderboard averages only ``finished`` runs.
STATUSES = ("running", "finished", "failed", "interrupted", "diverged")

#: What a run id may be: it names the run's files (W&B run ids and
#: :func:`~lightning_checkerboard.training.run_dir.new_run_id` ids both match).
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: The longest name (task, dataset, upsampler, stage, mapping key, URL …) a record may hold.
MAX_NAME_CHARS = 512
#: The longest other string (the message, a config value) a record may hold.
MAX_TEXT_CHARS = 65_536
#: How deep lists and mappings may nest inside one field (``config``, ``protocol`` …).
MAX_NESTING = 8
#: How many list items and mapping entries one record may hold in all.
MAX_ITEMS = 10_000
#: The largest ``result.json`` read; also the most characters of text one record may hold.
MAX_RECORD_BYTES = 4 * 1024 * 1024
_URL_SCHEMES = ("http", "https")
_INT_RANGE = 2**63  # a 64-bit integer: seeds and step counts fit, absurd numbers do not


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
        task: ``"gan"``, ``"style_transfer"`` or ``"super_resolution"``.
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
        return cls(**_checked_fields(payload, source))


# ---- Checks on records read from disk or W&B -------------------------------------------------


def _shown(value: Any) -> str:
    """A short one-line picture of ``value`` for an error message (never a 10 MB string)."""
    if isinstance(value, (list, tuple, Mapping)):
        return f"a {type(value).__name__} of {len(value)} item(s)"
    text = repr(value) if isinstance(value, (str, int, float, type(None))) else f"a {type(value).__name__}"
    return text if len(text) <= 80 else f"{text[:60]}… ({len(text)} characters)"


class _Checker:
    """Checks the fields of one record, counting its entries and characters against the limits."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items = 0
        self.chars = 0

    def fail(self, where: str, expected: str, value: Any) -> RecordError:
        return RecordError(f"{self.source}: field {where} must be {expected}; got {_shown(value)}.")

    def _count(self, items: int = 0, chars: int = 0) -> None:
        self.items += items
        self.chars += chars
        if self.items > MAX_ITEMS:
            raise RecordError(f"{self.source}: more than {MAX_ITEMS} list items and mapping entries.")
        if self.chars > MAX_RECORD_BYTES:
            raise RecordError(f"{self.source}: more than {MAX_RECORD_BYTES} characters of text.")

    def integer(self, where: str, value: Any, low: int = -_INT_RANGE, high: int = _INT_RANGE - 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(where, f"an int from {low} to {high}", value)
        return value

    def name(self, where: str, value: Any, *, empty: bool = True) -> str:
        if (not isinstance(value, str) or len(value) > MAX_NAME_CHARS or not value.isprintable()
                or (not empty and not value)):
            kind = "a" if empty else "a non-empty"
            raise self.fail(where, f"{kind} printable one-line str of at most {MAX_NAME_CHARS} characters", value)
        self._count(chars=len(value))
        return value

    def optional_name(self, where: str, value: Any) -> str | None:
        return None if value is None else self.name(where, value)

    def text(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
            raise self.fail(where, f"a str of at most {MAX_TEXT_CHARS} characters", value)
        self._count(chars=len(value))
        return value

    def run_id(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or not RUN_ID_PATTERN.fullmatch(value):
            raise self.fail(where, "1 to 128 letters, digits, '-' or '_'", value)
        return value

    def status(self, where: str, value: Any) -> str:
        if not isinstance(value, str) or value not in STATUSES:
            raise self.fail(where, f"one of {', '.join(STATUSES)}", value)
        return value

    def number(self, where: str, value: Any) -> int | float | None:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, "a number or null", value)
        return self.integer(where, value) if isinstance(value, int) else value

    def url(self, where: str, value: Any) -> str | None:
        if value is None:
            return None
        text = self.name(where, value)
        try:
            parts = urlsplit(text)
        except ValueError:
            parts = None
        if parts is None or parts.scheme.lower() not in _URL_SCHEMES or not parts.netloc or " " in text:
            raise self.fail(where, "an http(s) URL", value)
        return text

    def mapping(self, where: str, value: Any, item: Callable[[str, Any], Any],
                by_key: Mapping[str, Callable[[str, Any], Any]] | None = None) -> dict[str, Any]:
        """A mapping with name keys, each value checked by ``by_key[key]`` or else ``item``."""
        if not isinstance(value, Mapping):
            raise self.fail(where, "a mapping", value)
        self._count(items=len(value))
        checked = {}
        for key, entry in value.items():
            key = self.name(f"{where} key", key, empty=False)
            checked[key] = (by_key or {}).get(key, item)(f"{where}.{key}", entry)
        return checked

    def names(self, where: str, value: Any) -> list[str]:
        if not isinstance(value, list):
            raise self.fail(where, "a list of names", value)
        self._count(items=len(value))
        return [self.name(f"{where}[{index}]", entry, empty=False) for index, entry in enumerate(value)]

    def data(self, where: str, value: Any, depth: int = 0) -> Any:
        """JSON data: null, bool, number (non-finite as ``None``), str, list or mapping."""
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return self.number(where, value)
        if isinstance(value, str):
            return self.text(where, value)
        if isinstance(value, (list, tuple, Mapping)) and depth >= MAX_NESTING:
            raise RecordError(f"{self.source}: field {where} nests lists or mappings more than {MAX_NESTING} deep.")
        if isinstance(value, (list, tuple)):
            self._count(items=len(value))
            return [self.data(f"{where}[{index}]", entry, depth + 1) for index, entry in enumerate(value)]
        if isinstance(value, Mapping):
            return self.mapping(where, value, lambda inner, entry: self.data(inner, entry, depth + 1))
        raise self.fail(where, "JSON data (null, bool, number, str, list or mapping)", value)

    def settings(self, where: str, value: Any) -> dict[str, Any]:
        return self.mapping(where, value, self.data)

    def numbers(self, where: str, value: Any) -> dict[str, int | float | None]:
        return self.mapping(where, value, self.number)

    def wandb(self, where: str, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        return self.mapping(where, value, self.data,
                            {"url": self.url, "path": self.optional_name, "mode": self.optional_name})


# One check per field; a field added to ResultRecord adds its line here (a test holds the two equal).
_FIELD_CHECKS: dict[str, Callable[[_Checker, str, Any], Any]] = {
    "run_id": _Checker.run_id,
    "task": lambda c, where, value: c.name(where, value, empty=False),
    "status": _Checker.status,
    "dataset": _Checker.name,
    "image_size": lambda c, where, value: c.integer(where, value, 1, 65_536),
    "upsampler": lambda c, where, value: c.name(where, value, empty=False),
    "upsampler_stages": _Checker.names,
    "seed": _Checker.integer,
    "max_steps": lambda c, where, value: c.integer(where, value, 0),
    "steps": lambda c, where, value: c.integer(where, value, 0),
    "dataset_fingerprint": _Checker.name,
    "upsampler_options": _Checker.settings,
    "protocol": _Checker.settings,
    "metrics": _Checker.numbers,
    "baseline": lambda c, where, value: c.mapping(where, value, c.number, {"kind": c.name}),
    "throughput": _Checker.numbers,
    "config": _Checker.settings,
    "message": _Checker.text,
    "wandb": _Checker.wandb,
    "package_version": _Checker.name,
    "git_revision": _Checker.optional_name,
    "started_at": _Checker.name,
    "finished_at": _Checker.optional_name,
    "schema_version": _Checker.integer,
}


def _checked_fields(payload: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The fields of ``payload`` that a record has, each checked; non-finite numbers become ``None``."""
    checker = _Checker(source)
    return {key: _FIELD_CHECKS[key](checker, key, value) for key, value in payload.items() if key in _FIELD_CHECKS}


def write_record(record: ResultRecord, run_dir: str | os.PathLike) -> Path:
    """Write ``record`` atomically to ``run_dir/result.json`` and return the path."""
    return atomic_write_json(Path(run_dir) / RECORD_FILENAME, record.to_dict())


def read_record(path: str | os.PathLike) -> ResultRecord:
    """Read a record from a ``result.json`` file or a run directory that holds one.

    Raises:
        RecordError: an unreadable, malformed, oversized or incompatible file, or a bad field.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_FILENAME
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise RecordError(f"{path}: no result record.") from None
    except OSError as err:
        raise RecordError(f"{path}: unreadable ({err}).") from None
    if size > MAX_RECORD_BYTES:
        raise RecordError(f"{path}: {size} bytes, more than a record may hold ({MAX_RECORD_BYTES}).")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(f"{path}: no result record.") from None
    except (OSError, ValueError) as err:
        raise RecordError(f"{path}: unreadable ({err}).") from None
    except RecursionError:  # json nests by recursion: thousands of brackets end it
        raise RecordError(f"{path}: unreadable (nested too deep).") from None
    return ResultRecord.from_dict(payload, source=str(path))
