"""The training skeleton and its typed configs: flags to config and back, errors, help, what a run prints."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from _recipes import RECIPES, load_recipe
from lightning_checkerboard.cli import flag_message
from lightning_checkerboard.records import ResultRecord, read_record, write_record
from lightning_checkerboard.training import (
    ConfigError,
    GANConfig,
    Recipe,
    RunConfig,
    RunParts,
    StyleTransferConfig,
    image_datamodule,
    open_resumed_run,
    train,
    upsampler_stages,
)

gan = load_recipe("gan")
style = load_recipe("style_transfer")
grid = load_recipe("run_grid")

TINY_GAN = ["--dataset", "digits", "--image-size", "16", "--batch-size", "8", "--max-steps", "2", "--eval-every", "0",
            "--eval-samples", "16", "--fid", "off", "--gen-channels", "8", "--disc-channels", "8"]


# ---- configs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("recipe", "config_class"), [(gan, GANConfig), (style, StyleTransferConfig)])
def test_every_flag_is_a_config_field_and_every_field_a_flag(recipe, config_class):
    dests = {action.dest for action in recipe.build_parser()._actions if action.dest != "help"}
    assert dests == {config_class.key(name) for name in config_class.field_names()} | {"config", "print_config"}


@pytest.mark.parametrize(("recipe", "config_class"), [(gan, GANConfig), (style, StyleTransferConfig)])
def test_no_flags_make_the_default_config(recipe, config_class):
    assert config_class.from_namespace(recipe.build_parser().parse_args([])) == config_class()


def test_flags_round_trip_through_the_config_and_its_record():
    argv = ["--upsampler", "deconv_k3", "--padding", "reflect", "--max-steps", "7", "--lr-g", "0.001",
            "--disc-first-kernel", "3", "--fid-weights", "w.pth", "--output-dir", "elsewhere", "--tags", "a,b"]
    config = GANConfig.from_namespace(gan.build_parser().parse_args(argv))
    assert (config.upsampler, config.padding, config.max_steps, config.lr_g) == ("deconv_k3", "reflect", 7, 0.001)
    assert config.fid_weights == Path("w.pth") and config.output_dir == Path("elsewhere")
    recorded = config.record_config()
    assert "resume" not in recorded and recorded["fid_weights"] == "w.pth" and recorded["disc_first_kernel"] == 3
    record = {**recorded, "stages": ["deconv_k3"] * 3, "package_version": "0"}
    # A weights file comes from the command line of the resuming run, never from the record.
    resumed = GANConfig.from_record(record, resume=Path("run"), local={"fid_weights": Path("w.pth")})
    assert resumed == GANConfig.from_namespace({**vars(gan.build_parser().parse_args(argv)), "resume": Path("run")})
    assert GANConfig.from_record(record, resume=Path("run")).fid_weights is None


def test_style_transfer_keeps_its_content_dataset_key_in_flags_and_records():
    config = StyleTransferConfig.from_namespace(style.build_parser().parse_args(["--content-dataset", "digits"]))
    assert config.dataset == "digits" and config.record_config()["content_dataset"] == "digits"
    assert "dataset" not in config.record_config()
    assert StyleTransferConfig.from_record(config.record_config(), resume=Path("r")).dataset == "digits"


@pytest.mark.parametrize(
    ("config_class", "values", "message"),
    [
        (GANConfig, {"batch_size": 0}, r"^batch_size must be a positive integer; got 0\.$"),
        (GANConfig, {"padding": "circular"}, r"^padding must be one of 'zeros', 'reflect'; got 'circular'\.$"),
        (GANConfig, {"fid": "sometimes"}, r"^fid must be one of 'auto', 'required', 'off'; got 'sometimes'\.$"),
        (GANConfig, {"corrupt": "ignore"}, r"^corrupt must be one of 'skip', 'error'; got 'ignore'\.$"),
        (GANConfig, {"ema_decay": 1.0}, r"^ema_decay must be a finite number >= 0 and < 1; got 1\.0\.$"),
        (GANConfig, {"loss": "wasserstein"}, r"^loss must be one of 'nonsaturating', 'hinge'"),
        (GANConfig, {"output_dir": 3}, r"^output_dir must be a path; got 3\.$"),
        (StyleTransferConfig, {"content_layer": "relu9_9"}, r"^content_layer must be one of 'relu1_2'"),
        (StyleTransferConfig, {"tv_weight": -1.0}, r"^tv_weight must be a finite number >= 0; got -1\.0\.$"),
        (StyleTransferConfig, {"style_size": 0}, r"^style_size must be a positive integer; got 0\.$"),
    ],
)
def test_configs_reject_bad_values_naming_the_field(config_class, values, message):
    with pytest.raises(ValueError, match=message):
        config_class(**values)


def test_a_mapping_with_a_key_that_is_no_field_is_refused():
    with pytest.raises(TypeError, match="GANConfig has no field for content_dataset"):
        GANConfig.from_namespace({"content_dataset": "photos"})


# ---- errors: the library names fields, the command line names flags ----------------------------


def _interrupted_run(tmp_path: Path, **record_fields) -> Path:
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    fields = dict(run_id="r1", task="gan", status="interrupted", dataset="digits", image_size=16,
                  upsampler="nearest_conv", upsampler_stages=["nearest_conv"] * 2, seed=0, max_steps=2,
                  config={"batch_size": 8})
    write_record(ResultRecord(**{**fields, **record_fields}), run_dir)
    return run_dir


def test_resume_errors_name_the_field_and_no_flag(tmp_path):
    with pytest.raises(ConfigError, match=r"^resume: .*no result record") as missing:
        open_resumed_run(tmp_path / "nowhere")
    run_dir = _interrupted_run(tmp_path)
    with pytest.raises(ConfigError, match=r"^resume: .* has no checkpoints/last.ckpt to continue from$") as bare:
        open_resumed_run(run_dir)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"^resume: .*last.ckpt is not a readable checkpoint") as broken:
        open_resumed_run(run_dir)
    for info in (missing, bare, broken):
        assert "--" not in str(info.value) and "\n" not in str(info.value)


def test_a_hostile_recorded_setting_is_refused_before_anything_is_built(tmp_path):
    import torch

    run_dir = _interrupted_run(tmp_path, config={"batch_size": -5})
    torch.save({"state_dict": {}, "optimizer_states": [], "lr_schedulers": [], "loops": {}, "epoch": 0,
                "global_step": 0}, run_dir / "checkpoints" / "last.ckpt")
    with pytest.raises(ConfigError, match=r"^resume: the settings recorded in .* are not valid: batch_size must be a "
                                          r"positive integer; got -5\.$"):
        train(gan.GAN(), GANConfig(resume=run_dir))


def test_the_command_line_puts_the_flag_where_the_library_put_the_field():
    parser = style.build_parser()
    assert flag_message("resume: the run already finished", parser, StyleTransferConfig) == (
        "--resume: the run already finished")
    assert flag_message("eval_samples must be at least 2; got 1.", parser, StyleTransferConfig) == (
        "--eval-samples must be at least 2; got 1.")
    assert flag_message("dataset must be text; got 3.", parser, StyleTransferConfig) == (
        "--content-dataset must be text; got 3.")
    assert flag_message("loss network is missing", parser, StyleTransferConfig) == "loss network is missing"


def test_eval_samples_below_the_number_of_processes_is_one_line_before_any_run_directory(tmp_path, capsys):
    code = gan.run_cli(gan.main, [*TINY_GAN, "--eval-samples", "1", "--accelerator", "cpu", "--devices", "2",
                                  "--strategy", "ddp", "--logger", "none", "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err == ("error: --eval-samples must be at least the number of processes (2), so that each "
                                 "measures a share; got 1.\n")
    assert not list(tmp_path.iterdir())


def test_hardware_settings_lightning_refuses_are_one_line(tmp_path, capsys):
    code = gan.run_cli(gan.main, [*TINY_GAN, "--precision", "7", "--logger", "none", "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: the hardware settings do not work here: ") and err.count("\n") == 1


# ---- help ----------------------------------------------------------------------------------------


def _help_entries(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each flag's help as ``--help`` prints it (its lines joined, whitespace folded), by its last flag name."""
    entries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in parser.format_help().splitlines():
        if re.match(r"^  -", line):
            current = line.split()
            entries[current[0].rstrip(",") if current[0].startswith("--") else current[1]] = current
        elif current is not None and line.startswith("   "):
            current.extend(line.split())
        else:
            current = None
    return {flag: " ".join(words) for flag, words in entries.items()}


@pytest.mark.parametrize("recipe", [gan, style, grid], ids=["gan", "style_transfer", "run_grid"])
def test_help_gives_every_flag_a_text_and_no_default_twice(recipe):
    parser = recipe.build_parser()
    for action in parser._actions:
        assert action.help, action.option_strings or action.dest
    entries = _help_entries(parser)
    assert entries
    for flag, entry in entries.items():
        assert entry.count("default") <= 1, entry
        assert "(default: None)" not in entry, entry


def test_help_states_the_defaults_a_flag_has():
    entries = _help_entries(style.build_parser())
    assert entries["--padding"].endswith("(default: the layer's own, zeros)")
    assert entries["--style-size"].endswith("(default: --image-size)")
    assert entries["--max-steps"].endswith("(default: 200)") and entries["--seed"].endswith("(default: 0)")


# ---- a recipe of the library user's own ---------------------------------------------------------


class _TinyGAN(Recipe):
    """A recipe on the shared config alone: what a new task needs to write."""

    task = "tiny"

    def build(self, config, resumed):
        from lightning_checkerboard.callbacks import SampleGrid
        from lightning_checkerboard.tasks import GANTask

        stages = upsampler_stages(config, num_stages=2)
        datamodule = image_datamodule(config, heldout_samples=config.eval_samples)
        return RunParts(
            datamodule=datamodule,
            make_task=lambda: GANTask(stages, image_size=config.image_size, channels=datamodule.channels,
                                      gen_channels=8, disc_channels=8),
            stages=stages,
            callbacks=[SampleGrid(config.eval_every)],
            headline=f"a tiny GAN on {datamodule.name}",
        )

    def scores_line(self, record):
        return f"{record.steps} iterations"


def test_a_new_recipe_needs_only_build_and_scores_line(tmp_path, capsys):
    config = RunConfig(dataset="digits", image_size=16, batch_size=8, max_steps=3, eval_every=0, eval_samples=8,
                       logger="csv", output_dir=tmp_path)
    result = train(_TinyGAN(), config)
    out = capsys.readouterr().out
    assert result.finished and result.record.task == "tiny" and result.record.steps == 3
    assert result.run_dir.parent == tmp_path / "tiny" / "digits" / "nearest_conv"
    assert read_record(result.run_dir).config["stages"] == ["nearest_conv", "nearest_conv"]
    assert (result.run_dir / "checkpoints" / "last.ckpt").is_file() and (result.run_dir / "samples").is_dir()
    assert f"run {result.record.run_id}: a tiny GAN on digits" in out and "3 iterations" in out
    assert "stopped after 3 of 3 iterations" in out  # a GAN's two updates per iteration counted as one
    with pytest.raises(TypeError, match="_TinyGAN takes a RunConfig; got str"):
        train(_TinyGAN(), "config")


# ---- what a run prints ---------------------------------------------------------------------------


def test_a_run_prints_its_iterations_and_none_of_lightnings_or_wandbs_noise(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("WANDB_SILENT", "PYTHONWARNINGS")}
    env.update(WANDB_MODE="offline", PYTHONUNBUFFERED="1")
    env.pop("LIGHTNING_CHECKERBOARD_RUN_DIR", None)
    result = subprocess.run([sys.executable, str(RECIPES / "gan.py"), *TINY_GAN, "--logger", "wandb",
                             "--output-dir", str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stopped after 2 of 2 iterations" in result.stdout
    assert "wandb" in result.stderr  # W&B spoke (its own lines stay), but none of these:
    for noise in ("`Trainer.fit` stopped", "max_steps=4", "litlogger", "TPU available", "LeafSpec",
                  "does not have many workers", "logging interval", "anonymous setting", "URL not available"):
        assert noise not in result.stderr + result.stdout, noise
