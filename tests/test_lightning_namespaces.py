"""The package's tasks, datamodule and callbacks train under both Lightning namespaces.

``lightning.pytorch`` (the ``lightning`` package) and ``pytorch_lightning`` have separate class
hierarchies; a Trainer of one refuses the modules of the other. Each namespace is chosen once per
process, so every case runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lightning_checkerboard._lightning import choose_namespace

_FIT = '''
import json, sys
first, weights, root = sys.argv[1:4]
if first == "lightning":
    import lightning as L
    Trainer, LightningModule, Callback = L.Trainer, L.LightningModule, L.Callback
else:
    import pytorch_lightning as pl
    Trainer, LightningModule, Callback = pl.Trainer, pl.LightningModule, pl.Callback
from lightning_checkerboard._lightning import NAMESPACE
from lightning_checkerboard.callbacks import ArtifactMetrics, FIDCallback, SampleGrid
from lightning_checkerboard.data import ImageDataModule
from lightning_checkerboard.tasks import GANTask

task = GANTask("nearest_conv", image_size=16, channels=1, latent_dim=8, gen_channels=8, disc_channels=8,
               num_fixed_samples=4)
data = ImageDataModule("digits", image_size=16, batch_size=4, train_samples=16, heldout_samples=8, cache_dir=root)
artifacts = ArtifactMetrics(0, 4, batch_size=4, gradient=False)
fid = FIDCallback(num_samples=4, batch_size=4, weights_path=weights, cache_dir=root)
grid = SampleGrid(1, nrow=2, num_samples=4)
trainer = Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False, callbacks=[artifacts, fid, grid], default_root_dir=root)
trainer.fit(task, datamodule=data)
print(json.dumps({
    "namespace": NAMESPACE,
    "subclasses": [isinstance(task, LightningModule)] + [isinstance(c, Callback) for c in (artifacts, fid, grid)],
    "global_step": trainer.global_step,
    "fid": fid.latest.get("fid"),
    "artifacts": sorted(artifacts.latest),
    "grids": len(grid.saved),
}))
'''


def _fit(first: str, inception_weights, tmp_path, **env) -> dict:
    environ = {key: value for key, value in os.environ.items() if key != "LCB_LIGHTNING"}
    done = subprocess.run([sys.executable, "-c", _FIT, first, str(inception_weights), str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env={**environ, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("first", "namespace"), [("lightning", "lightning.pytorch"),
                                                  ("pytorch_lightning", "pytorch_lightning")])
def test_gan_task_and_callbacks_fit_under_the_trainer_the_user_imported(first, namespace, inception_weights, tmp_path):
    result = _fit(first, inception_weights, tmp_path)
    assert result["namespace"] == namespace
    assert all(result["subclasses"])
    # GANTask makes two optimizer steps per iteration (generator and discriminator).
    assert result["global_step"] == 2
    assert isinstance(result["fid"], float) and result["fid"] >= 0
    assert "checkerboard" in result["artifacts"]
    assert result["grids"] >= 1


def test_the_environment_variable_overrides_what_was_imported():
    # pytorch_lightning imported first, but LCB_LIGHTNING=lightning: the package builds on lightning.pytorch.
    script = (
        "import pytorch_lightning, lightning.pytorch\n"
        "from lightning_checkerboard._lightning import NAMESPACE\n"
        "from lightning_checkerboard.tasks import GANTask\n"
        "from lightning_checkerboard.callbacks import ArtifactMetrics\n"
        "print(NAMESPACE, issubclass(GANTask, lightning.pytorch.LightningModule),\n"
        "      issubclass(GANTask, pytorch_lightning.LightningModule), issubclass(ArtifactMetrics, lightning.pytorch.Callback))\n"
    )
    environ = {key: value for key, value in os.environ.items() if key != "LCB_LIGHTNING"}
    for forced, expected in (("lightning", "lightning.pytorch True False True"),
                             ("pytorch_lightning", "pytorch_lightning False True False")):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                              env={**environ, "LCB_LIGHTNING": forced})
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.split("\n")[-2] == expected


def test_choose_namespace_rule():
    both = {"lightning.pytorch": object(), "pytorch_lightning": object()}
    assert choose_namespace({}, {"pytorch_lightning": object()}) == "pytorch_lightning"
    assert choose_namespace({}, {"lightning.pytorch": object()}) == "lightning.pytorch"
    assert choose_namespace({}, both) == "lightning.pytorch"
    assert choose_namespace({"LCB_LIGHTNING": "pytorch_lightning"}, both) == "pytorch_lightning"
    assert choose_namespace({"LCB_LIGHTNING": "lightning"}, {"pytorch_lightning": object()}) == "lightning.pytorch"
    # Nothing imported: lightning.pytorch when the lightning package is installed (it is, with the test extra).
    assert choose_namespace({}, {}) == "lightning.pytorch"
    with pytest.raises(ValueError, match=r"LCB_LIGHTNING must be one of lightning, pytorch_lightning; got 'pl'\."):
        choose_namespace({"LCB_LIGHTNING": "pl"}, {})


def test_no_module_of_the_package_imports_a_lightning_namespace_by_name():
    from pathlib import Path

    import lightning_checkerboard

    root = Path(lightning_checkerboard.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "_lightning.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")) and any(
                    name in stripped.split() or stripped.split()[1].startswith(name + ".")
                    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric")):
                offenders.append(f"{path.relative_to(root)}:{number}: {stripped}")
    assert offenders == []
