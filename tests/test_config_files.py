"""Recipes read their settings from YAML (``--config``), print them (``--print-config``) and leave them in the run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from _recipes import load_recipe
from lightning_checkerboard.records import read_record
from lightning_checkerboard.training import GANConfig
from lightning_checkerboard.training.config_file import read_config_file, write_config_file

gan = load_recipe("gan")
style_transfer = load_recipe("style_transfer")
super_resolution = load_recipe("super_resolution")

TINY = ["--dataset", "digits", "--image-size", "16", "--batch-size", "8", "--max-steps", "3", "--eval-every", "0",
        "--eval-samples", "8", "--fid", "off", "--gen-channels", "8", "--disc-channels", "8", "--latent-dim", "16",
        "--logger", "none", "--lr-g", "0.00031", "--accelerator", "cpu"]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def _printed(module, argv, capsys) -> dict:
    assert module.run_cli(module.main, [*argv, "--print-config"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_a_run_directorys_config_reproduces_the_run_bit_identically(tmp_path, capsys):
    first_out, second_out = tmp_path / "first", tmp_path / "second"
    assert gan.run_cli(gan.main, [*TINY, "--output-dir", str(first_out)]) == 0, capsys.readouterr().err
    (first,) = first_out.glob("gan/digits/nearest_conv/seed0-*")
    written = yaml.safe_load((first / "config.yaml").read_text())
    recorded = read_record(first).config
    assert {key: recorded[key] for key in written} == written  # the record's settings, every one of them
    assert written["max_steps"] == 3 and written["lr_g"] == 0.00031 and written["output_dir"] == str(first_out)
    # The same file, the output directory overridden on the command line (a flag wins over the file).
    code = gan.run_cli(gan.main, ["--config", str(first / "config.yaml"), "--output-dir", str(second_out)])
    assert code == 0, capsys.readouterr().err
    (second,) = second_out.glob("gan/digits/nearest_conv/seed0-*")
    expected, got = _weights(first), _weights(second)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    assert read_record(first).metrics == read_record(second).metrics
    config = yaml.safe_load((second / "config.yaml").read_text())
    assert {**config, "output_dir": None} == {**written, "output_dir": None}


@pytest.mark.parametrize("module", [gan, style_transfer, super_resolution], ids=["gan", "style_transfer", "sr"])
def test_print_config_is_what_config_reads_and_flags_win(module, tmp_path, capsys):
    defaults = _printed(module, [], capsys)
    assert "resume" not in defaults and "config" not in defaults and defaults["max_steps"] > 0
    changed = {**defaults, "max_steps": 7, "seed": 5, "data_cache": not defaults["data_cache"]}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(changed))
    assert _printed(module, ["--config", str(path)], capsys) == changed
    # A flag on the command line wins over the file.
    assert _printed(module, ["--config", str(path), "--max-steps", "9"], capsys) == {**changed, "max_steps": 9}
    partial = tmp_path / "partial.yaml"
    partial.write_text("seed: 11\n")
    assert _printed(module, ["--config", str(partial)], capsys) == {**defaults, "seed": 11}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus: 1\n", "--config {path}: unknown setting 'bogus' (--print-config lists the settings)"),
        ("max_steps: 0\n", "--config {path}: max_steps must be a positive integer; got '0'."),
        ("max_steps: 2.5\n", "--config {path}: max_steps must be a positive integer; got '2.5'."),
        ("max_steps: true\n", "--config {path}: max_steps takes the value of --max-steps, not true/false; got True"),
        ("max_steps: null\n", "--config {path}: max_steps cannot be null"),
        ("data_cache: 1\n", "--config {path}: data_cache must be true or false; got 1"),
        ("fid: sometimes\n", "--config {path}: fid must be one of auto, required, off; got 'sometimes'"),
        ("upsampler: [deconv]\n", "--config {path}: upsampler must be a single value"),
        ("resume: runs/x\n", "--config {path}: resume cannot come from a config file (give --resume on the command line)"),
        ("- max_steps\n", "--config {path} must hold a mapping of settings (key: value); got a list"),
        ("max_steps: [\n", "--config {path} is not valid YAML at line 2"),
        ("!!python/object/apply:os.system [touch {marker}]\n", "--config {path} is not valid YAML"),
    ],
)
def test_a_bad_config_file_is_one_line_and_exit_code_2(text, message, tmp_path, capsys):
    path, marker = tmp_path / "bad.yaml", tmp_path / "ran"
    path.write_text(text.format(marker=marker))
    code = gan.run_cli(gan.main, ["--config", str(path), "--output-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: " + message.format(path=path)), err
    assert not marker.exists() and not (tmp_path / "runs").exists()


def test_a_missing_config_file_is_one_line(tmp_path, capsys):
    code = gan.run_cli(gan.main, ["--config", str(tmp_path / "none.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and err == f"error: --config {tmp_path / 'none.yaml'}: does not exist.\n"


def test_a_weights_file_named_in_a_config_is_not_used_unless_the_command_line_names_it(tmp_path, capsys):
    weights = tmp_path / "inception.pth"
    weights.write_bytes(b"not read")
    path = tmp_path / "run.yaml"
    path.write_text(f"fid_weights: {weights}\nmax_steps: 4\n")
    assert gan.run_cli(gan.main, ["--config", str(path), "--print-config"]) == 0
    out, err = capsys.readouterr()
    assert yaml.safe_load(out)["fid_weights"] is None and yaml.safe_load(out)["max_steps"] == 4
    assert err.startswith(f"note: {path} names --fid-weights '{weights}'") and "give --fid-weights again" in err
    assert gan.run_cli(gan.main, ["--config", str(path), "--fid-weights", str(weights), "--print-config"]) == 0
    out, err = capsys.readouterr()
    assert yaml.safe_load(out)["fid_weights"] == str(weights) and err == ""


def test_resume_takes_no_config_file(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("max_steps: 4\n")
    code = gan.run_cli(gan.main, ["--resume", str(tmp_path), "--config", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "--resume continues a run with its recorded settings; drop --config" in err


def test_the_config_file_round_trips_every_value_exactly(tmp_path):
    config = GANConfig(lr_g=0.1 + 0.2, ema_decay=0.9999, padding="reflect", wandb_entity="team", tags="a,b",
                       output_dir=tmp_path / "runs")
    write_config_file(config, tmp_path / "config.yaml")
    values = read_config_file(tmp_path / "config.yaml")
    assert GANConfig.from_namespace(values) == config


def test_a_config_file_larger_than_the_limit_is_refused(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    path.write_text("# " + "x" * (1 << 20) + "\n")
    code = gan.run_cli(gan.main, ["--config", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: --config {path}: more than") and err.count("\n") == 1
