"""Group result records into tables, aggregate seeds and rank upsamplers.

A *table* holds runs that may be compared: same task, dataset, resolution, training budget and metric
protocol. A *row* is one upsampler configuration (spec and options) in a table, with the mean, the
sample standard deviation (``ddof=1``; none for one run) and the count of every metric over its
finished runs. Rows are ranked by the table's primary quality metric under the rule of
:mod:`~lightning_checkerboard.leaderboard.ranking` (FID when every run has it, else SWD; rows that
do not beat their baseline did not learn; rows whose seeds overlap share a rank); artifact scores
are columns. Runs that did not finish are set apart, never averaged in, and one run id counts once.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lightning_checkerboard._paths import slug
from lightning_checkerboard.leaderboard.ranking import TEST_NAME, choose_primary, rank_rows
from lightning_checkerboard.metrics.directions import METRIC_INFO, QUALITY_METRICS, metric_info
from lightning_checkerboard.records import ResultRecord

__all__ = [
    "BUDGET_KEYS",
    "METRICS",
    "PROTOCOL_KEYS",
    "Leaderboard",
    "Row",
    "Stat",
    "Table",
    "aggregate",
    "deduplicate",
    "page_stem",
]

#: Metric-protocol settings that must match for numbers to be compared (super-resolution adds its
#: factor and the photographs it holds out, the autoencoder its latent stride and those photographs).
PROTOCOL_KEYS = ("eval_samples", "heldout_samples", "levels", "fid_extractor", "fid_samples", "loss_network",
                 "scale", "heldout_photos", "latent_stride")
#: Protocol settings only some tasks record: absent from the others' tables rather than ``None``.
_TASK_PROTOCOL_KEYS = ("loss_network", "scale", "heldout_photos", "latent_stride")
#: Training settings that must match for a ranking to be fair (from the record's config): the GAN
#: task's, then the style-transfer task's, then the super-resolution task's, then the autoencoder's.
BUDGET_KEYS = ("max_steps", "batch_size", "gen_channels", "disc_channels", "latent_dim",
               "disc_first_stride", "disc_first_kernel", "disc_norm", "ema_decay", "loss", "lr_g", "lr_d",
               "base_channels", "style", "style_size", "content_weight", "style_weight", "tv_weight",
               "content_layer", "lr", "features", "hidden_channels", "activation", "residual",
               "block_channels", "latent_channels", "layers_per_block", "kl_weight", "perceptual_weight")
#: The aggregated columns, ``(key, label, source)``: quality metrics first, then artifacts and speed;
#: each metric's direction is in :data:`~lightning_checkerboard.metrics.directions.METRIC_INFO`.
METRICS = tuple((key, METRIC_INFO[key].label, METRIC_INFO[key].source) for key in (
    *QUALITY_METRICS, "psnr_bicubic", "ssim_bicubic", "kid", "precision", "recall", "residual_checkerboard",
    "residual_checkerboard_upper", "checkerboard", "checkerboard_upper", "checkerboard_ratio",
    "spectral_distance", "gradient_checkerboard", "images_per_second",
))


def page_stem(task: str, dataset: str) -> str:
    """``<task>-<dataset>`` in file-name-safe text: the start of a table's key and of its page's name.

    Example:
        >>> page_stem("gan", "hf:owner/repo")
        'gan-hf-owner-repo'
    """
    return "-".join(slug(name, None, keep="._-", trim="-") for name in (task, dataset))


@dataclass
class Stat:
    """Mean, sample standard deviation (``None`` for one value) and count of one metric."""

    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Iterable[Any]) -> "Stat | None":
        """The statistics of the finite numbers in ``values``, or ``None`` when there are none."""
        numbers = [float(v) for v in values
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
        if not numbers:
            return None
        return cls(statistics.fmean(numbers), statistics.stdev(numbers) if len(numbers) > 1 else None, len(numbers))


@dataclass
class Row:
    """One upsampler configuration in a table."""

    upsampler: str
    options: dict[str, Any]
    stages: list[str]
    runs: list[ResultRecord]
    metrics: dict[str, Stat | None]
    #: 1 for the best; shared when seeds overlap; ``None`` when the row did not learn or the table has
    #: no primary metric.
    rank: int | None = None
    #: Whether the row beats its baseline on the table's primary metric (``None``: no baseline).
    learned: bool | None = None
    #: The baseline's value of the table's primary metric, over the row's runs.
    baseline: Stat | None = None
    #: Holm-adjusted p-value of the row's comparison with the first row of its group (shared rank) or of
    #: the group above (new rank); ``None`` for the first ranked row and unranked rows.
    p_adjusted: float | None = None

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def seeds(self) -> list[int]:
        return sorted(run.seed for run in self.runs)

    @property
    def label(self) -> str:
        """The spec, with options when there are any (``nearest_conv padding=reflect``)."""
        options = " ".join(f"{key}={value}" for key, value in sorted(self.options.items()))
        return f"{self.upsampler} {options}".strip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "learned": self.learned,
            "p_adjusted": self.p_adjusted,
            "baseline": None if self.baseline is None else vars(self.baseline),
            "upsampler": self.upsampler,
            "options": self.options,
            "stages": self.stages,
            "n": self.n,
            "seeds": self.seeds,
            "run_ids": [run.run_id for run in self.runs],
            "metrics": {key: None if stat is None else vars(stat) for key, stat in self.metrics.items()},
            "runs": [{"run_id": run.run_id, "seed": run.seed, "url": (run.wandb or {}).get("url"),
                      "values": {key: value for key, value in _run_values(run).items() if value is not None}}
                     for run in self.runs],
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any], table: dict[str, Any]) -> "Row":
        """A row as :meth:`to_dict` wrote it (in ``table``, a :meth:`Table.to_dict`), for re-rendering.

        Each run comes back as a record holding what the leaderboard shows of it (run id, seed, its
        metric values and W&B link); rows written before per-run values were kept have runs with
        no values, and their statistics are the written ones.

        Raises:
            ValueError: a field of the wrong kind.
        """
        runs = []
        written = payload.get("runs") if isinstance(payload.get("runs"), list) else [
            {"run_id": run_id, "seed": seed} for run_id, seed in zip(payload["run_ids"], payload["seeds"])]
        for entry in written:
            values = entry.get("values") if isinstance(entry.get("values"), dict) else {}
            url = entry.get("url")
            runs.append(ResultRecord(
                run_id=str(entry["run_id"]), task=str(table["task"]), status="finished", dataset=str(table["dataset"]),
                image_size=int(table["image_size"]), upsampler=str(payload["upsampler"]),
                upsampler_stages=[str(s) for s in payload.get("stages", [])], seed=int(entry["seed"]),
                max_steps=int(table["budget"].get("max_steps", 0)), upsampler_options=dict(payload.get("options", {})),
                metrics={k: v for k, v in values.items() if METRIC_INFO.get(k) is None or METRIC_INFO[k].source == "metrics"},
                throughput={k: v for k, v in values.items() if k in METRIC_INFO and METRIC_INFO[k].source == "throughput"},
                wandb={"url": url} if isinstance(url, str) else None))
        metrics = {key: _stat_from(payload["metrics"].get(key)) for key, _, _ in METRICS}
        return cls(str(payload["upsampler"]), dict(payload.get("options", {})), [str(s) for s in payload.get("stages", [])],
                   runs, metrics, payload.get("rank"), payload.get("learned"), _stat_from(payload.get("baseline")),
                   payload.get("p_adjusted"))


def _run_values(run: ResultRecord) -> dict[str, Any]:
    return {key: getattr(run, source).get(key) for key, _, source in METRICS}


def _stat_from(value: Any) -> "Stat | None":
    if not isinstance(value, dict):
        return None
    return Stat(float(value["mean"]), None if value.get("std") is None else float(value["std"]), int(value["n"]))


@dataclass
class Table:
    """Runs that may be compared, one row per upsampler configuration, best first."""

    task: str
    dataset: str
    image_size: int
    protocol: dict[str, Any]
    budget: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    #: The metric the rows are ranked by (``None``: no quality metric that every run has; unranked).
    primary: str | None = None
    #: How rows are separated.
    test: str = TEST_NAME

    @property
    def key(self) -> str:
        """A stable file-name-safe id: ``gan-photos-32px-<hash of budget and protocol>``."""
        digest = hashlib.sha1(json.dumps([self.protocol, self.budget], sort_keys=True, default=str).encode())
        return f"{page_stem(self.task, self.dataset)}-{self.image_size}px-{digest.hexdigest()[:8]}"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "task": self.task, "dataset": self.dataset, "image_size": self.image_size,
                "protocol": self.protocol, "budget": self.budget, "primary": self.primary,
                "higher_is_better": None if self.primary is None else metric_info(self.primary).higher_is_better,
                "test": self.test, "rows": [row.to_dict() for row in self.rows]}

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "Table":
        """A table as :meth:`to_dict` wrote it (see :meth:`Row.from_dict`)."""
        table = cls(str(payload["task"]), str(payload["dataset"]), int(payload["image_size"]), dict(payload["protocol"]),
                    dict(payload["budget"]), [], payload.get("primary"), str(payload.get("test", TEST_NAME)))
        table.rows = [Row.from_dict(row, payload) for row in payload["rows"]]
        return table


@dataclass
class Leaderboard:
    """Tables, the runs set apart, and what was left out and why."""

    tables: list[Table]
    excluded: list[ResultRecord]
    duplicates: list[str]
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tables": [table.to_dict() for table in self.tables],
            "excluded": [{"run_id": r.run_id, "task": r.task, "dataset": r.dataset, "image_size": r.image_size,
                          "upsampler": r.upsampler, "seed": r.seed, "status": r.status, "steps": r.steps,
                          "max_steps": r.max_steps, "message": r.message} for r in self.excluded],
            "duplicates": self.duplicates,
            "rejected": [{"source": source, "reason": reason} for source, reason in self.rejected],
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "Leaderboard":
        """A leaderboard as :meth:`to_dict` wrote it (``leaderboard.json``), for re-rendering its pages.

        Raises:
            ValueError: a field missing or of the wrong kind.
        """
        try:
            tables = [Table.from_dict(table) for table in payload["tables"]]
            excluded = [ResultRecord(run_id=str(r["run_id"]), task=str(r["task"]), status=str(r["status"]),
                                     dataset=str(r["dataset"]), image_size=int(r["image_size"]),
                                     upsampler=str(r["upsampler"]), upsampler_stages=[], seed=int(r["seed"]),
                                     steps=int(r["steps"]), max_steps=int(r["max_steps"]), message=str(r["message"]))
                        for r in payload.get("excluded", [])]
            rejected = [(str(r["source"]), str(r["reason"])) for r in payload.get("rejected", [])]
            return cls(tables, excluded, [str(d) for d in payload.get("duplicates", [])], rejected)
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"not a leaderboard.json this version wrote: {type(err).__name__}: {err}") from None


def _completeness(record: ResultRecord) -> tuple:
    return (record.status == "finished", record.steps, record.finished_at or "")


def deduplicate(records: Iterable[ResultRecord]) -> tuple[list[ResultRecord], list[str]]:
    """One record per run id, and the ids seen more than once.

    The same run can arrive twice (a local directory and its W&B copy, or two overlapping
    ``--from`` folders). The most complete copy is kept: finished over not, then more steps, then
    the later finish.
    """
    kept: dict[str, ResultRecord] = {}
    duplicates: list[str] = []
    for record in records:
        seen = kept.get(record.run_id)
        if seen is None:
            kept[record.run_id] = record
            continue
        if record.run_id not in duplicates:
            duplicates.append(record.run_id)
        if _completeness(record) > _completeness(seen):
            kept[record.run_id] = record
    return list(kept.values()), duplicates


def protocol_of(record: ResultRecord) -> dict[str, Any]:
    """The protocol settings that decide comparability (``fid_samples`` only when FID was measured,
    ``loss_network`` only for tasks that have one: pretrained and random VGG-16 runs never share a table;
    ``scale`` and ``heldout_photos`` only for super-resolution, ``latent_stride`` (and ``heldout_photos``)
    only for the autoencoder: ×2 and ×4 runs, or runs held out on different photographs, never share one)."""
    protocol = {key: record.protocol.get(key) for key in PROTOCOL_KEYS}
    if protocol["fid_extractor"] is None:
        protocol.pop("fid_samples")
    for key in _TASK_PROTOCOL_KEYS:
        if protocol[key] is None:
            protocol.pop(key)
    return protocol


def budget_of(record: ResultRecord) -> dict[str, Any]:
    """The training settings that decide a fair comparison (those the record's config has)."""
    # A setting left at its default (None) is absent, so records from before a setting existed and
    # records that leave it unset share a table.
    budget = {key: record.config[key] for key in BUDGET_KEYS if record.config.get(key) is not None}
    budget["max_steps"] = record.max_steps
    return budget


def _freeze(mapping: dict[str, Any]) -> str:
    return json.dumps(mapping, sort_keys=True, default=str)


def _metric_values(runs: Iterable[ResultRecord], key: str) -> list[Any]:
    source = METRIC_INFO[key].source if key in METRIC_INFO else "metrics"
    return [getattr(run, source).get(key) for run in runs]


def _baseline_values(runs: Iterable[ResultRecord], key: str) -> list[float]:
    values = [run.baseline.get(key) for run in runs]
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def rank_table(rows: list[Row]) -> tuple[list[Row], str | None]:
    """Rank ``rows`` in place by the primary quality metric; returns them in listing order and the metric.

    Without a quality metric that every run has, the rows keep no rank and are listed by name.
    """
    primary = choose_primary({key: [v for row in rows for v in _metric_values(row.runs, key)]
                              for key in QUALITY_METRICS})
    if primary is None:
        for row in rows:
            row.rank, row.learned, row.baseline = None, None, None
        return sorted(rows, key=lambda row: row.label), None
    values = [[float(v) for v in _metric_values(row.runs, primary)] for row in rows]
    baselines = [_baseline_values(row.runs, primary) for row in rows]
    order, results = rank_rows(values, baselines, metric_info(primary).higher_is_better)
    for row, result, base in zip(rows, results, baselines):
        row.rank, row.learned, row.baseline = result.rank, result.learned, Stat.of(base)
        row.p_adjusted = result.p_adjusted
    return [rows[i] for i in order], primary


def aggregate(records: Iterable[ResultRecord]) -> Leaderboard:
    """Group, aggregate and rank ``records`` (see :func:`rank_table`).

    Example:
        >>> from lightning_checkerboard.records import ResultRecord
        >>> def run(seed, score):
        ...     return ResultRecord(run_id=f"r{seed}", task="gan", status="finished", dataset="photos",
        ...                         image_size=32, upsampler="deconv", upsampler_stages=["deconv"] * 3,
        ...                         seed=seed, max_steps=10, metrics={"checkerboard": score})
        >>> row = aggregate([run(0, 1.0), run(1, 3.0)]).tables[0].rows[0]
        >>> row.n, row.metrics["checkerboard"].mean, round(row.metrics["checkerboard"].std, 4)
        (2, 2.0, 1.4142)
    """
    unique, duplicates = deduplicate(records)
    finished = [record for record in unique if record.status == "finished"]
    excluded = [record for record in unique if record.status != "finished"]

    groups: dict[tuple, dict[tuple, list[ResultRecord]]] = {}
    for record in finished:
        protocol, budget = protocol_of(record), budget_of(record)
        table_key = (record.task, record.dataset, record.image_size, _freeze(protocol), _freeze(budget))
        row_key = (record.upsampler, _freeze(record.upsampler_options))
        groups.setdefault(table_key, {}).setdefault(row_key, []).append(record)

    tables = []
    for (task, dataset, image_size, protocol, budget), rows_by_key in sorted(groups.items()):
        rows = []
        for (upsampler, _), runs in rows_by_key.items():
            runs.sort(key=lambda r: (r.seed, r.run_id))
            metrics = {key: Stat.of(getattr(run, source).get(key) for run in runs) for key, _, source in METRICS}
            rows.append(Row(upsampler, dict(runs[0].upsampler_options), list(runs[0].upsampler_stages), runs, metrics))
        rows.sort(key=lambda row: row.label)  # a stable start: equal rows list by name
        rows, primary = rank_table(rows)
        tables.append(Table(task, dataset, image_size, json.loads(protocol), json.loads(budget), rows, primary))
    excluded.sort(key=lambda r: (r.task, r.dataset, r.image_size, r.upsampler, r.seed, r.run_id))
    return Leaderboard(tables, excluded, duplicates)
