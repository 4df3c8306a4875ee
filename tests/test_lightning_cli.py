"""``lightning-checkerboard fit``: Lightning's LightningCLI on the package's tasks, datamodule and callbacks."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "lightning-checkerboard"


def _readme_command() -> list[str]:
    """The command of the docs' "Use it from LightningCLI" section (docs/guides/your-own-task.md), as arguments."""
    text = (ROOT / "docs" / "guides" / "your-own-task.md").read_text(encoding="utf-8")
    section = text.split("## Use it from LightningCLI", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return shlex.split(block.replace("\\\n", " "))


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_readme_command_trains_and_its_printed_config_trains_the_same_from_yaml(tmp_path):
    command = _readme_command()
    assert command[:2] == ["lightning-checkerboard", "fit"]
    done = _run(command[1:], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "runs" / "cli"
    (checkpoint,) = out.glob("**/checkpoints/*.ckpt")
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert state["global_step"] == 4  # optimizer steps: two GAN iterations (one D and one G update each)
    assert sorted(p.name for p in out.glob("spectra/*.png")) == ["step_000002.png"]
    # The config LightningCLI saved beside the run names the callback with its settings ...
    saved = yaml.safe_load((out / "config.yaml").read_text())
    (callback,) = saved["trainer"]["callbacks"]
    assert callback["class_path"].endswith("ArtifactMetrics") and callback["init_args"]["num_samples"] == 8
    assert saved["model"]["class_path"].endswith("GANTask") and saved["model"]["init_args"]["upsampler"] == "nearest_conv"
    # ... and --print_config writes one that --config reads back: the callbacks come from YAML alone.
    printed = _run([*command[1:], "--print_config"], tmp_path)
    assert printed.returncode == 0, printed.stderr[-3000:]
    config = yaml.safe_load(printed.stdout)
    config["trainer"]["default_root_dir"] = "runs/from-yaml"
    config["trainer"]["callbacks"][0]["init_args"]["every_n_steps"] = 1
    (tmp_path / "fit.yaml").write_text(yaml.safe_dump(config))
    again = _run(["fit", "--config", "fit.yaml"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "runs" / "from-yaml").glob("spectra/*.png")) == ["step_000001.png",
                                                                                       "step_000002.png"]


def test_fit_help_lists_lightning_cli_options(tmp_path):
    done = _run(["fit", "--help"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--trainer.max_steps" in done.stdout and "--model" in done.stdout and "--data" in done.stdout


def test_lightning_cli_takes_no_prefix_of_a_flag(capsys):
    import pytest

    from lightning_checkerboard.lightning_cli import main

    with pytest.raises(SystemExit) as exited:
        main(["fit", "--model", "GANTask", "--data", "ImageDataModule", "--trainer.max_step", "3", "--print_config"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --trainer.max_step 3" in capsys.readouterr().err
