"""The measuring callbacks on a plain LightningModule: setup-time errors naming what is missing, and ``sample_fn``."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from lightning_checkerboard._lightning import pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torchvision.io import read_image

from lightning_checkerboard.callbacks import ArtifactMetrics, FIDCallback, HeldoutLoss, SampleGrid
from lightning_checkerboard.metrics.fid import FID_DIAGNOSTICS
from lightning_checkerboard.callbacks._sources import batch_generator, draw_samples
from lightning_checkerboard.callbacks.artifacts import default_levels
from lightning_checkerboard.callbacks.protocols import (
    SampleFn,
    SupportsHeldoutImages,
    SupportsMetricSamples,
    SupportsSampleGrid,
)
from lightning_checkerboard.metrics import CheckerboardScore
from lightning_checkerboard.tasks import GANTask

SIZE = 16


class TinyGenerator(pl.LightningModule):
    """A user's generator: none of the package's methods, only ``generate(num, generator)``."""

    def __init__(self, size: int = SIZE) -> None:
        super().__init__()
        self.size = size
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 4 * (size // 2) ** 2),
            torch.nn.Unflatten(1, (4, size // 2, size // 2)),
            torch.nn.BatchNorm2d(4),
            torch.nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1),
            torch.nn.Sigmoid(),
        )
        self.steps = 0
        self.modes_seen_by_sample_fn: list[bool] = []
        self.seeds_seen_by_sample_fn: list[int] = []

    def generate(self, num: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if generator is not None:
            self.modes_seen_by_sample_fn.append(self.training)
            self.seeds_seen_by_sample_fn.append(generator.initial_seed())
        return self.net(torch.randn(num, 8, generator=generator).to(self.device))

    def training_step(self, batch, batch_idx):
        self.steps += 1
        return (self.generate(len(batch[0])) - batch[0]).square().mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class NamedSampleTheirWay(TinyGenerator):
    """A module whose ``sample`` takes arguments: not the ``sample()`` a SampleGrid calls."""

    def sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        return self.generate(num, generator)


class HeldoutData(pl.LightningDataModule):
    """A plain datamodule with held-out images and no fingerprint."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.images = images

    def train_dataloader(self):
        return DataLoader(TensorDataset(self.images), batch_size=4)

    def heldout_images(self) -> torch.Tensor:
        return self.images


class PlainData(HeldoutData):
    heldout_images = None  # type: ignore[assignment]


def _loader(n: int = 8) -> DataLoader:
    images = torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(images), batch_size=4)


def _fit(model: pl.LightningModule, callbacks: list, tmp_path: Path, *, steps: int = 2, datamodule=None) -> pl.Trainer:
    trainer = pl.Trainer(
        max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=callbacks, default_root_dir=str(tmp_path),
    )
    if datamodule is None:
        trainer.fit(model, _loader())
    else:
        trainer.fit(model, datamodule=datamodule)
    return trainer



# ---------------------------------------------------------------------------------------- setup-time errors


@pytest.mark.parametrize(
    ("make_callback", "needs"),
    [
        (lambda weights: ArtifactMetrics(1, 4), r"define metric_samples\(num, \*, seed, batch_size, rank, world_size\)"),
        (lambda weights: FIDCallback(num_samples=4, weights_path=weights), r"define metric_samples\(num, \*, seed"),
        (lambda weights: SampleGrid(1), r"define sample\(\) -> \(N, C, H, W\) images in \[0, 1\]"),
    ],
    ids=["ArtifactMetrics", "FIDCallback", "SampleGrid"],
)
def test_a_module_missing_its_method_fails_at_setup_before_any_step(make_callback, needs, inception_weights, tmp_path):
    model = TinyGenerator()
    callback = make_callback(inception_weights)
    name = type(callback).__name__
    with pytest.raises(TypeError, match=needs) as info:
        _fit(model, [callback], tmp_path, datamodule=HeldoutData(torch.rand(8, 3, SIZE, SIZE)))
    message = str(info.value)
    assert "\n" not in message
    assert f"or pass {name}(sample_fn=...) with sample_fn(num, generator)" in message
    assert "TinyGenerator has no" in message
    assert model.steps == 0  # found before training, not after it


def test_a_sample_method_with_other_arguments_is_named_with_its_signature(tmp_path):
    model = NamedSampleTheirWay()
    expected = r"\(NamedSampleTheirWay\.sample\(num, generator\) cannot be called that way\)\.$"
    with pytest.raises(TypeError, match=expected):
        _fit(model, [SampleGrid(1)], tmp_path)
    assert model.steps == 0


@pytest.mark.parametrize(
    ("datamodule", "reason"),
    [(None, "no datamodule"), (PlainData(torch.rand(8, 3, SIZE, SIZE)), "PlainData has no heldout_images")],
    ids=["no-datamodule", "datamodule-without-heldout"],
)
def test_fid_without_real_images_fails_at_setup(datamodule, reason, inception_weights, tmp_path):
    model = TinyGenerator()
    callback = FIDCallback(num_samples=4, weights_path=inception_weights, sample_fn=model.generate)
    expected = rf"FIDCallback needs real images: pass FIDCallback\(real_images=\.\.\.\).*\({reason}"
    with pytest.raises(TypeError, match=expected):
        _fit(model, [callback], tmp_path, datamodule=datamodule)
    assert model.steps == 0


def test_fid_off_and_artifacts_without_real_images_need_no_data(tmp_path):
    model = TinyGenerator()
    artifacts = ArtifactMetrics(0, 4, sample_fn=model.generate)
    _fit(model, [FIDCallback("off"), artifacts], tmp_path)
    assert model.steps == 2
    assert "spectral_distance" not in artifacts.latest and artifacts.protocol["heldout_samples"] == 0


def test_the_package_tasks_satisfy_the_protocols():
    task = GANTask(image_size=16, latent_dim=8, gen_channels=8, disc_channels=8)
    assert isinstance(task, SupportsMetricSamples) and isinstance(task, SupportsSampleGrid)
    assert not isinstance(TinyGenerator(), SupportsMetricSamples)
    assert isinstance(HeldoutData(torch.rand(1, 3, 4, 4)), SupportsHeldoutImages)
    assert isinstance(TinyGenerator().generate, SampleFn)


@pytest.mark.parametrize("callback", [ArtifactMetrics, FIDCallback])
def test_fewer_samples_than_processes_fails_at_setup(callback, inception_weights):
    model = TinyGenerator()
    weights = {"weights_path": inception_weights} if callback is FIDCallback else {}
    trainer = SimpleNamespace(world_size=4, datamodule=None)
    made = callback(num_samples=3, sample_fn=model.generate, real_images=torch.rand(4, 3, SIZE, SIZE), **weights)
    expected = rf"{callback.__name__} num_samples must be at least the number of processes \(4\), .* got 3\.$"
    with pytest.raises(ValueError, match=expected):
        made.setup(trainer, model, "fit")
    made.setup(trainer, model, "validate")  # only training measures


@pytest.mark.parametrize("callback", [ArtifactMetrics, FIDCallback, SampleGrid])
def test_sample_fn_is_checked_at_construction(callback):
    policy = {"policy": "off"} if callback is FIDCallback else {}
    with pytest.raises(TypeError, match="sample_fn must be a callable sample_fn\\(num, generator\\).*got int"):
        callback(sample_fn=3, **policy)
    with pytest.raises(TypeError, match=r"got one with signature \(num\)"):
        callback(sample_fn=lambda num: torch.rand(num, 3, 8, 8), **policy)


@pytest.mark.parametrize("callback", [ArtifactMetrics, FIDCallback, SampleGrid])
def test_seed_must_be_a_non_negative_integer(callback):
    policy = {"policy": "off"} if callback is FIDCallback else {}
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer; got -1"):
        callback(seed=-1, **policy)


def test_real_images_are_checked_at_construction():
    with pytest.raises(ValueError, match=r"`real_images` must have 4 dimensions"):
        ArtifactMetrics(real_images=torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match=r"float `real_images` must lie in \[0, 1\]"):
        FIDCallback("off", real_images=torch.rand(2, 3, 8, 8) * 2)
    as_uint8 = ArtifactMetrics(real_images=torch.full((1, 1, 8, 8), 255, dtype=torch.uint8))
    assert torch.equal(as_uint8.real_images, torch.ones(1, 1, 8, 8))


# ---------------------------------------------------------------------------------------- sample_fn contract


@pytest.mark.parametrize("world_size", [1, 2, 3, 5])
@pytest.mark.parametrize("batch_size", [1, 4, 7, 64])
def test_processes_together_draw_the_images_one_process_draws(world_size, batch_size):
    calls: list[tuple[int, int]] = []

    def sample_fn(num, generator):
        calls.append((num, generator.initial_seed()))
        return torch.rand(num, 1, 8, 8, generator=generator)

    single = draw_samples(sample_fn, 13, seed=7, batch_size=batch_size)
    calls.clear()
    shares = [draw_samples(sample_fn, 13, seed=7, batch_size=batch_size, rank=r, world_size=world_size)
              for r in range(world_size)]
    assert torch.equal(torch.cat(shares), single)
    assert [len(share) for share in shares] == [(r + 1) * 13 // world_size - r * 13 // world_size
                                                for r in range(world_size)]
    # Each process asks only for the batches that overlap its share: at most one batch more than it needs.
    batches = math.ceil(13 / batch_size)
    assert len(calls) <= batches + world_size - 1
    assert all(num <= batch_size for num, _ in calls)


def test_batches_get_distinct_generators_and_callbacks_with_nearby_seeds_share_none():
    seeds = {batch_generator(seed, index).initial_seed() for seed in (2024, 2025) for index in range(4)}
    assert len(seeds) == 8


def test_sample_fn_output_is_checked():
    with pytest.raises(ValueError, match=r"return num images; sample_fn\(4, generator\) returned shape \(3, 1, 8,"):
        draw_samples(lambda num, g: torch.rand(num - 1, 1, 8, 8), 4, seed=0, batch_size=4)
    with pytest.raises(ValueError, match=r"float `sample_fn\(4, generator\) output` must lie in \[0, 1\]"):
        draw_samples(lambda num, g: torch.randn(num, 1, 8, 8), 4, seed=0, batch_size=4)
    with pytest.raises(TypeError, match=r"`sample_fn\(4, generator\) output` must be a torch.Tensor"):
        draw_samples(lambda num, g: [0.5] * num, 4, seed=0, batch_size=4)
    with pytest.raises(ValueError, match=r"num_samples must be at least the number of processes \(3\); got 2"):
        draw_samples(lambda num, g: torch.rand(num, 1, 8, 8), 2, seed=0, batch_size=4, rank=0, world_size=3)


# ---------------------------------------------------------------------------------------- tiny runs with sample_fn


def _patterned(amplitude: float):
    """A sample_fn: smooth random images plus a period-2 checkerboard of RMS ``amplitude / 255``."""
    sign = (torch.arange(SIZE)[:, None] + torch.arange(SIZE)[None, :]) % 2 * 2 - 1

    def sample_fn(num, generator):
        coarse = torch.rand(num, 3, SIZE // 4, SIZE // 4, generator=generator)
        smooth = F.interpolate(coarse, scale_factor=4, mode="bilinear", align_corners=False)
        return 0.3 + 0.4 * smooth + sign * amplitude / 255

    return sample_fn


def test_artifact_metrics_measures_what_sample_fn_draws(tmp_path):
    model = TinyGenerator()
    real = torch.rand(16, 3, SIZE, SIZE)
    callback = ArtifactMetrics(0, 64, sample_fn=_patterned(8.0), batch_size=16, real_images=real)
    _fit(model, [callback], tmp_path)
    assert callback.latest["checkerboard"] == pytest.approx(8.0, rel=0.05)
    # levels were read from the samples: 16 pixels fit periods 2 and 4
    assert callback.protocol == {"eval_samples": 64, "levels": 2, "heldout_samples": 16}
    # SWD to the real images, at the end and once before training as the baseline
    assert callback.latest["swd"] > 0 and callback.baseline["swd"] > 0
    assert callback.latest["checkerboard_upper"] >= callback.latest["checkerboard"]
    assert 0 < callback.latest["spectral_distance"] <= 1


def test_artifact_metrics_sees_the_same_samples_in_eval_mode_at_every_measurement(tmp_path):
    model = TinyGenerator()
    callback = ArtifactMetrics(1, 8, sample_fn=model.generate, batch_size=4)
    _fit(model, [callback], tmp_path, steps=3)
    # measured after steps 1 and 2 and at the end, two batches each, always the same two generators
    seeds = model.seeds_seen_by_sample_fn
    assert len(seeds) == 6 and seeds[0:2] == seeds[2:4] == seeds[4:6] and seeds[0] != seeds[1]
    assert model.modes_seen_by_sample_fn == [False] * 6 and model.training
    direct = CheckerboardScore(levels=2)
    direct.update(draw_samples(model.generate, 8, seed=callback.seed, batch_size=4, module=model))
    assert callback.latest["checkerboard"] == pytest.approx(float(direct.compute()), abs=1e-5)


def test_artifact_metrics_levels_follow_non_square_samples(tmp_path):
    callback = ArtifactMetrics(0, 4, sample_fn=lambda num, g: torch.rand(num, 3, 24, 32, generator=g))
    _fit(TinyGenerator(), [callback], tmp_path, steps=1)
    # the width alone allows periods up to 8; the height only up to 4
    assert callback.protocol["levels"] == default_levels(24, width=32) == 2 and default_levels(32) == 3


def test_sample_grid_with_sample_fn_shows_the_same_noise_in_every_grid(tmp_path):
    model = TinyGenerator()
    callback = SampleGrid(1, nrow=4, sample_fn=model.generate, num_samples=8)
    _fit(model, [callback], tmp_path, steps=2)
    assert [Path(p).name for p in callback.saved] == ["step_000001.png", "final.png"]
    seeds = model.seeds_seen_by_sample_fn
    assert len(seeds) == 2 and seeds[0] == seeds[1] and model.modes_seen_by_sample_fn == [False, False]
    grid = read_image(callback.saved[-1])
    assert tuple(grid.shape) == (3, 2 + 2 * (SIZE + 2), 2 + 4 * (SIZE + 2))  # 2 rows of 4, padded by 2


@pytest.mark.parametrize(
    "extractor",
    [
        pytest.param("recorded", id="recorded"),  # features and Fréchet distance stubbed out: the wiring only
        pytest.param("inception", id="inception", marks=pytest.mark.slow),  # Inception passes + a 2048-d eigensolve
    ],
)
def test_fid_with_sample_fn_and_real_images_measures_those_images(extractor, inception_weights, tmp_path, monkeypatch):
    model = TinyGenerator()
    real = torch.rand(6, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    callback = FIDCallback(num_samples=4, batch_size=4, weights_path=inception_weights, cache_dir=tmp_path / "cache",
                           sample_fn=model.generate, real_images=real)
    fed: dict[bool, list[torch.Tensor]] = {True: [], False: []}
    update = callback.metric.update

    def recording_update(images, real):
        fed[real].append(images.cpu())
        if extractor == "inception":
            update(images, real=real)

    monkeypatch.setattr(callback.metric, "update", recording_update)
    if extractor == "recorded":
        monkeypatch.setattr(callback.metric, "compute", lambda: torch.tensor(12.5))
        monkeypatch.setattr(callback.metric, "diagnostics",
                            lambda: {key: torch.tensor(12.5 if key == "fid" else 0.5) for key in FID_DIAGNOSTICS})
    _fit(model, [callback], tmp_path, steps=1)
    assert math.isfinite(callback.latest["fid"]) and callback.latest["fid"] >= 0
    assert callback.protocol["fid_real_samples"] == 4 and not callback.protocol["fid_real_from_cache"]
    assert not (tmp_path / "cache").exists()  # explicit real images have no fingerprint to cache under
    # FID itself is held to torch-fidelity in test_fid.py; here: it saw the first 4 real images and the seeded samples
    assert torch.equal(torch.cat(fed[True]), real[:4])
    drawn = draw_samples(model.generate, 4, seed=callback.seed, batch_size=4, module=model)
    # two measurements: the untrained model (the run's baseline) before the first step, the trained one at the end
    assert len(fed[False]) == 2 and torch.equal(fed[False][-1], drawn)
    assert set(callback.baseline) == {"fid"} and math.isfinite(callback.baseline["fid"])


_DDP_SCRIPT = '''
import json, sys
import torch
from lightning_checkerboard._lightning import pl
from lightning_checkerboard.callbacks import ArtifactMetrics

class Generator(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 4 * 8 * 8), torch.nn.Unflatten(1, (4, 8, 8)), torch.nn.ReLU(),
                                       torch.nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1),
                                       torch.nn.Sigmoid())

    def generate(self, num, generator):
        return self.net(torch.randn(num, 8, generator=generator).to(self.device))

    def training_step(self, batch, batch_idx):
        return self.net(torch.randn(2, 8, device=self.device)).mean() * 0

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)

if __name__ == "__main__":
    devices, out = int(sys.argv[1]), sys.argv[2]
    torch.manual_seed(0)
    model, real = Generator(), torch.rand(24, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    callback = ArtifactMetrics(0, 13, batch_size=5, gradient=False, sample_fn=model.generate, real_images=real)
    trainer = pl.Trainer(accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto", max_steps=1,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False, callbacks=[callback])
    trainer.fit(model, torch.utils.data.DataLoader(torch.utils.data.TensorDataset(real), batch_size=4))
    if trainer.global_rank == 0:
        with open(out, "w") as handle:
            json.dump(callback.latest, handle)
'''


@pytest.mark.slow  # two interpreters under DDP plus one alone: ~1 min on two loaded CPU cores
def test_sample_fn_under_ddp_measures_what_one_process_measures(tmp_path):
    import json
    import subprocess
    import sys

    script = tmp_path / "ddp_sample_fn.py"
    script.write_text(_DDP_SCRIPT)
    results = {}
    for devices in (1, 2):
        out = tmp_path / f"latest_{devices}.json"
        done = subprocess.run([sys.executable, str(script), str(devices), str(out)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        results[devices] = json.loads(out.read_text())
    assert results[1].keys() == results[2].keys() and "spectral_distance" in results[1]
    assert results[1]["checkerboard"] > 1  # a 3x3 stride-2 deconv: something to measure
    for key, value in results[1].items():
        tolerance = dict(abs=0.05) if key.startswith("pnr_db") else dict(rel=1e-4, abs=1e-6)
        assert results[2][key] == pytest.approx(value, **tolerance), key


def test_two_measuring_callbacks_of_one_kind_fit_in_one_trainer(tmp_path):
    """Only callbacks that keep a baseline are stateful, keyed by their settings, so Lightning accepts pairs."""
    model = TinyGenerator()
    callbacks = [SampleGrid(1, sample_fn=model.generate), SampleGrid(2, sample_fn=model.generate),
                 ArtifactMetrics(0, 16, sample_fn=model.generate), ArtifactMetrics(0, 32, sample_fn=model.generate)]
    trainer = _fit(model, callbacks, tmp_path, steps=1)
    assert callbacks[2].state_key != callbacks[3].state_key
    assert trainer.state.finished


class _Autoencoder(pl.LightningModule):
    """A task with ``losses(inputs)``: its loss on held-out images is its quality number."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Conv2d(3, 3, 3, padding=1)

    def losses(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        error = (self.net(inputs) - inputs).square().mean()
        return {"total": 2 * error, "error": error}

    def training_step(self, batch, batch_idx):
        return self.losses(batch[0])["total"]

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


class _HeldoutData(pl.LightningDataModule):
    def train_dataloader(self):
        return _loader(32)

    def heldout_images(self) -> torch.Tensor:
        return torch.rand(12, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(5))


def test_heldout_loss_records_the_task_loss_on_held_out_images_and_its_untrained_baseline(tmp_path):
    callback = HeldoutLoss(0, 10, batch_size=4)
    model = _Autoencoder()
    _fit(model, [callback], tmp_path, steps=8, datamodule=_HeldoutData())
    held_out = _HeldoutData().heldout_images()[:10]
    with torch.no_grad():
        expected = sum(float(model.losses(chunk)["error"]) * len(chunk) for chunk in held_out.split(4)) / 10
    assert callback.latest["heldout_error"] == pytest.approx(expected, rel=1e-6)
    assert callback.latest["heldout_loss"] == pytest.approx(2 * expected, rel=1e-6)
    assert callback.latest["heldout_loss"] < callback.baseline["heldout_loss"]  # it learned


def test_heldout_loss_needs_losses_on_the_module_and_held_out_images_on_the_datamodule(tmp_path):
    with pytest.raises(TypeError, match=r"HeldoutLoss needs losses\(inputs\)"):
        _fit(TinyGenerator(), [HeldoutLoss()], tmp_path, datamodule=_HeldoutData())
    with pytest.raises(TypeError, match=r"HeldoutLoss needs a datamodule with heldout_images\(\)"):
        _fit(_Autoencoder(), [HeldoutLoss()], tmp_path)
