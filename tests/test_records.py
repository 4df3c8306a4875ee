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


# --- checks on read: records come from other people's folders and W&B projects ---------------


def _payload(**overrides) -> dict:
    return _record().to_dict() | overrides


def test_every_record_field_has_a_check_on_read():
    from dataclasses import fields

    from lightning_checkerboard._record_checks import FIELD_CHECKS as _FIELD_CHECKS

    assert set(_FIELD_CHECKS) == {f.name for f in fields(ResultRecord)}


def test_a_record_written_by_a_run_passes_the_checks_unchanged(tmp_path):
    record = _record(
        metrics={"checkerboard": 0.5, "fid": None}, protocol={"eval_samples": 256, "fid_extractor": None},
        config={"lr_g": 2e-4, "tags": "", "stages": ["deconv"] * 3, "output_dir": "runs", "resume": None},
        upsampler_options={"padding": "reflect"}, message="NaN loss at step 7\nlast good checkpoint kept",
        wandb={"mode": "offline", "path": "team/proj/abc", "url": None}, git_revision="abc+dirty", seed=-1,
    )
    write_record(record, tmp_path)
    assert read_record(tmp_path) == record


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"run_id": "a/b"}, r"field run_id must be 1 to 128 letters, digits, '-' or '_'; got 'a/b'\."),
        ({"run_id": "x" * 129}, r"field run_id must be .*; got 'xxxx"),
        ({"status": "done"}, r"field status must be one of running, finished, failed, interrupted, diverged"),
        ({"task": ""}, r"field task must be a non-empty printable one-line str"),
        ({"dataset": "photos\r"}, r"field dataset must be a printable one-line str of at most 512"),
        ({"upsampler_stages": ["deconv", 3]}, r"field upsampler_stages\[1\] must be a non-empty printable"),
        ({"upsampler_options": {"": 1}}, r"field upsampler_options key must be a non-empty printable"),
        ({"image_size": 0}, r"field image_size must be an int from 1 to 65536; got 0\."),
        ({"steps": -1}, r"field steps must be an int from 0 to"),
        ({"seed": True}, r"field seed must be an int"),
        ({"metrics": {"fid": [1.0]}}, r"field metrics\.fid must be a number or null; got a list of 1 item\(s\)\."),
        ({"throughput": None}, r"field throughput must be a mapping; got None\."),
        ({"message": "x" * 70_000}, r"field message must be a str of at most 65536 characters; got 'xxx.*characters\)\."),
        ({"config": {"x": object()}}, r"field config\.x must be JSON data"),
        ({"wandb": {"url": "ftp://host/x"}}, r"field wandb\.url must be an http\(s\) URL; got 'ftp://host/x'\."),
        ({"wandb": {"url": "https://"}}, r"field wandb\.url must be an http\(s\) URL"),
        ({"wandb": {"url": "https://wandb.ai/a b"}}, r"field wandb\.url must be an http\(s\) URL"),
        ({"wandb": "https://wandb.ai"}, r"field wandb must be a mapping"),
        ({"config": {"a": [[[[[[[[[1]]]]]]]]]}}, r"field config\.a(\[0\]){8} nests lists or mappings more than 8 deep\."),
        ({"config": {str(i): i for i in range(10_001)}}, r"more than 10000 list items and mapping entries"),
        ({"config": {str(i): "y" * 60_000 for i in range(80)}}, r"more than 4194304 characters of text"),
    ],
)
def test_bad_fields_are_rejected_with_one_line_naming_the_field(overrides, message):
    with pytest.raises(RecordError, match=message) as caught:
        ResultRecord.from_dict(_payload(**overrides), source="runs/x/result.json")
    assert str(caught.value).startswith("runs/x/result.json: ") and "\n" not in str(caught.value)
    assert len(str(caught.value)) < 300


def test_non_finite_numbers_anywhere_read_as_null_and_the_record_is_kept():
    payload = _payload(metrics={"fid": float("nan"), "checkerboard": 1.5}, throughput={"x": float("-inf")},
                       config={"lr": float("inf"), "nested": [float("nan"), 1]})
    record = ResultRecord.from_dict(payload)
    assert record.metrics == {"fid": None, "checkerboard": 1.5} and record.throughput == {"x": None}
    assert record.config == {"lr": None, "nested": [None, 1]}


def test_http_and_https_links_are_kept():
    for url in ("https://wandb.ai/team/proj/runs/abc", "http://localhost:8080/team/proj/runs/abc"):
        assert ResultRecord.from_dict(_payload(wandb={"url": url})).wandb == {"url": url}


def test_files_larger_than_a_record_may_be_are_rejected_before_reading(tmp_path, monkeypatch):
    from lightning_checkerboard import records

    monkeypatch.setattr(records, "MAX_RECORD_BYTES", 1000)
    (tmp_path / "result.json").write_text(json.dumps(_payload(message="x" * 2000)))
    with pytest.raises(RecordError, match=r"result.json: \d+ bytes, more than a record may hold \(1000\)\."):
        read_record(tmp_path)


def test_json_nested_beyond_the_parser_is_unreadable_not_a_crash(tmp_path):
    (tmp_path / "result.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RecordError, match=r"unreadable \(nested too deep\)"):
        read_record(tmp_path)
