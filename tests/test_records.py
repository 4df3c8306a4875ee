"""The versioned result record and the atomic writes behind it."""

from __future__ import annotations

import json
import os

import pytest

from lightning_checkerboard._io import atomic_write_json, atomic_write_text
from lightning_checkerboard.records import (
    SCHEMA_VERSION,
    RecordError,
    ResultRecord,
    read_record,
    write_record,
)


def _record(**overrides) -> ResultRecord:
    fields = dict(run_id="abc", task="gan", status="finished", dataset="photos", image_size=32,
                  upsampler="nearest_conv", upsampler_stages=["nearest_conv"] * 3, seed=1, max_steps=10)
    fields.update(overrides)
    return ResultRecord(**fields)


def test_round_trip_through_a_run_directory(tmp_path):
    record = _record(metrics={"checkerboard": 0.5, "fid": None}, protocol={"eval_samples": 256})
    path = write_record(record, tmp_path)
    assert path == tmp_path / "result.json"
    assert read_record(tmp_path) == record
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION


def test_nan_and_inf_metrics_are_written_as_null(tmp_path):
    write_record(_record(metrics={"fid": float("nan"), "x": float("inf")}), tmp_path)
    assert read_record(tmp_path).metrics == {"fid": None, "x": None}


def test_unknown_status_is_rejected():
    with pytest.raises(RecordError, match="status must be one of running, finished, failed, interrupted, diverged; got 'done'"):
        _record(status="done")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "expected a JSON object"),
        ({"run_id": "a"}, "no integer schema_version"),
        ({"schema_version": 0}, "schema_version 0 predates the first published schema"),
        ({"schema_version": SCHEMA_VERSION + 1}, f"schema_version {SCHEMA_VERSION + 1} is newer"),
        ({"schema_version": SCHEMA_VERSION, "run_id": "a"}, r"missing field\(s\) dataset, image_size"),
    ],
)
def test_incompatible_payloads_are_rejected_with_a_reason(tmp_path, payload, message):
    (tmp_path / "result.json").write_text(json.dumps(payload))
    with pytest.raises(RecordError, match=message):
        read_record(tmp_path)


def test_missing_and_corrupt_files_are_record_errors(tmp_path):
    with pytest.raises(RecordError, match="no result record"):
        read_record(tmp_path)
    (tmp_path / "result.json").write_text('{"schema_version": 1, "run_')
    with pytest.raises(RecordError, match="unreadable"):
        read_record(tmp_path)


def test_unknown_fields_from_newer_minor_writers_are_ignored(tmp_path):
    payload = _record().to_dict() | {"extra": 1}
    (tmp_path / "result.json").write_text(json.dumps(payload))
    assert read_record(tmp_path) == _record()


def test_atomic_writes_get_the_ordinary_file_mode(tmp_path):
    path = atomic_write_text(tmp_path / "x.txt", "hi")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_atomic_write_leaves_the_old_file_when_killed_before_the_rename(tmp_path, monkeypatch):
    target = tmp_path / "file.json"
    atomic_write_text(target, "old")

    def killed(*args):
        raise KeyboardInterrupt  # as a SIGINT between writing the temporary file and renaming it

    monkeypatch.setattr("lightning_checkerboard._io.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_json(target, {"new": True})
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["file.json"]  # no temporary file left behind
