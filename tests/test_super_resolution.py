"""Super-resolution: the ESPCN-style network, the degradation, the fidelity metrics, the task and its record."""

from __future__ import annotations

import math

import pytest
from lightning_checkerboard._lightning import pl
import torch
import torch.nn.functional as F

from _photos import photo_crops
from lightning_checkerboard import list_upsamplers
from lightning_checkerboard.callbacks import ArtifactMetrics, FidelityMetrics, ResultRecorder
from lightning_checkerboard.callbacks.fidelity import fidelity_scores
from lightning_checkerboard.data import ImageDataModule, bicubic_upscale, check_hr_size, downscale
from lightning_checkerboard.data.photo_holdout import HeldoutPhotosDataModule
from lightning_checkerboard.data.photos import PHOTO_NAMES, load_photo_cache, photo_cache_path
from lightning_checkerboard.functional.fidelity import crop_border, rgb_to_y
from lightning_checkerboard.metrics.residual_checkerboard import ResidualCheckerboardScore
from lightning_checkerboard.models import SuperResolutionNet
from lightning_checkerboard.records import ResultRecord, read_record
from lightning_checkerboard.tasks import GANTask, SuperResolutionTask


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("photos-cache")


# -- network --------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("name", list_upsamplers())
def test_network_upsamples_by_its_scale_and_trains_every_parameter(name, scale):
    torch.manual_seed(0)
    net = SuperResolutionNet(name, scale=scale, features=8, hidden_channels=4, residual=False)
    assert net.stage_names == [name] * (scale // 2)
    out = net(torch.rand(2, 3, 8, 8))
    assert out.shape == (2, 3, 8 * scale, 8 * scale)
    out.square().mean().backward()
    for param_name, param in net.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, param_name


def test_the_last_stage_is_the_output_layer_as_in_espcn():
    net = SuperResolutionNet("pixel_shuffle", scale=4, features=8, hidden_channels=4, activation="relu")
    first, last = net.stages
    assert isinstance(first[-1], torch.nn.ReLU) and first[0].out_channels == 4
    assert last.out_channels == 3 and last.conv.out_channels == 3 * 4  # sub-pixel conv straight to RGB
    assert [type(m) for m in net.features] == [torch.nn.Conv2d, torch.nn.ReLU, torch.nn.Conv2d, torch.nn.ReLU]
    assert net.features[0].kernel_size == (5, 5) and net.features[2].kernel_size == (3, 3)


def test_residual_network_adds_its_correction_to_unclamped_bicubic():
    net = SuperResolutionNet("pixel_shuffle", features=8, hidden_channels=4, residual=True)
    with torch.no_grad():
        net.stages[-1].conv.weight.zero_()
        net.stages[-1].conv.bias.zero_()
    lr = torch.rand(2, 3, 8, 8)
    reference = F.interpolate(lr, size=(16, 16), mode="bicubic", antialias=True, align_corners=False)
    torch.testing.assert_close(net(lr), reference)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"scale": 3}, "scale must be one of 2, 4, 8; got 3"),
    ({"upsampler": "nearest_conv,deconv"}, "names 2 stages but the model has 1"),
    ({"upsampler": "pixelshuffle"}, "Did you mean 'pixel_shuffle'"),
    ({"activation": "gelu"}, "activation must be one of tanh, relu; got 'gelu'"),
    ({"features": 0}, "features must be a positive integer; got 0"),
    ({"residual": "yes"}, "residual must be True or False"),
])
def test_network_rejects_bad_settings_in_one_line(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        SuperResolutionNet(**kwargs)
    assert "\n" not in str(info.value)


# -- degradation ----------------------------------------------------------------------------------

def test_degradation_is_clamped_antialiased_bicubic_and_the_baseline_inverts_its_size():
    hr = photo_crops(3, 32, seed=1).float()
    hr[0] = 0.0
    hr[0, :, :, 16:] = 1.0  # a black-to-white step: the cubic kernel overshoots on both sides of it
    lr = downscale(hr, 4)
    reference = F.interpolate(hr, size=(8, 8), mode="bicubic", antialias=True, align_corners=False)
    assert lr.shape == (3, 3, 8, 8) and reference.min() < 0.0 and reference.max() > 1.0
    torch.testing.assert_close(lr, reference.clamp(0, 1))
    up = bicubic_upscale(lr, 4)
    assert up.shape == hr.shape and 0.0 <= up.min() and up.max() <= 1.0
    flat = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(bicubic_upscale(downscale(flat, 2), 2), flat)


@pytest.mark.parametrize(("size", "scale"), [((15, 16), 2), ((16, 18), 4), ((2, 2), 4)])
def test_indivisible_sizes_are_a_one_line_error(size, scale):
    with pytest.raises(ValueError, match=f"divisible by the scale {scale}; got {size[0]}×{size[1]}") as info:
        downscale(torch.rand(1, 3, *size), scale)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="scale must be an integer >= 2; got 1"):
        check_hr_size(16, 16, 1)


# -- fidelity metrics -----------------------------------------------------------------------------

def test_luma_is_bt601_on_a_hand_computed_pixel():
    pixel = torch.tensor([0.2, 0.6, 1.0]).view(1, 3, 1, 1)
    expected = (16 + 65.481 * 0.2 + 128.553 * 0.6 + 24.966 * 1.0) / 255
    assert math.isclose(float(rgb_to_y(pixel)), expected, rel_tol=1e-6)
    with pytest.raises(ValueError, match="needs \\(B, 3, H, W\\)"):
        rgb_to_y(torch.zeros(1, 1, 4, 4))


def _direct_ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """SSIM (Wang et al. 2004) with an 11-tap Gaussian of σ 1.5 at every pixel, the image reflected at its edges."""
    taps = torch.arange(11, dtype=torch.float64) - 5
    gauss = torch.exp(-taps**2 / (2 * 1.5**2))
    gauss = gauss / gauss.sum()
    window = (gauss[:, None] * gauss[None, :]).expand(a.shape[1], 1, 11, 11)

    def blur(x):
        return F.conv2d(F.pad(x, (5, 5, 5, 5), mode="reflect"), window, groups=a.shape[1])

    a, b = a.double(), b.double()
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    ssim = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim.mean(dim=(1, 2, 3)).mean())


def test_psnr_and_ssim_are_measured_on_cropped_luma_and_on_rgb():
    targets = photo_crops(2, 24, seed=3).float()
    outputs = (targets + 0.03 * torch.randn(targets.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    outputs[..., :2, :] = 1 - targets[..., :2, :]  # a ruined border of 2 rows: the crop must hide it
    scores = fidelity_scores(outputs, targets, border=2, levels=1)
    y_out, y_ref = rgb_to_y(outputs)[..., 2:-2, 2:-2], rgb_to_y(targets)[..., 2:-2, 2:-2]
    assert math.isclose(scores["psnr"], 10 * math.log10(1 / float((y_out - y_ref).double().square().mean())), rel_tol=1e-5)
    assert math.isclose(scores["ssim"], _direct_ssim(y_out, y_ref), abs_tol=1e-5)
    rgb_out, rgb_ref = outputs[..., 2:-2, 2:-2], targets[..., 2:-2, 2:-2]
    assert math.isclose(scores["psnr_rgb"], 10 * math.log10(1 / float((rgb_out - rgb_ref).double().square().mean())), rel_tol=1e-5)
    assert math.isclose(scores["ssim_rgb"], _direct_ssim(rgb_out, rgb_ref), abs_tol=1e-5)
    uncropped = fidelity_scores(outputs, targets, border=0, levels=1)
    assert uncropped["psnr"] < scores["psnr"] - 5  # the ruined border counts only without the crop
    with pytest.raises(ValueError, match="border must be an integer in \\[0, 11\\]"):
        crop_border(targets, 12)


def test_residual_checkerboard_reads_the_pattern_an_output_adds_to_its_target():
    targets = photo_crops(16, 32, seed=4, low=0.1, high=0.9).float()
    checker = (-1.0) ** (torch.arange(32)[:, None] + torch.arange(32)[None, :])
    clean = fidelity_scores(targets.clone(), targets, border=2, levels=2)
    patterned = fidelity_scores(targets + 2 / 255 * checker, targets, border=2, levels=2)
    assert clean["residual_checkerboard"] == 0.0
    assert patterned["residual_checkerboard"] == pytest.approx(2.0, abs=0.05)
    assert patterned["residual_checkerboard_upper"] >= patterned["residual_checkerboard"]
    with pytest.raises(ValueError, match="`residual` must have 4 dimensions"):
        ResidualCheckerboardScore(levels=1).update(torch.zeros(3, 8, 8))


# -- task, callback and record --------------------------------------------------------------------

def _fit(cache_dir, tmp_path, seed: int, *, steps: int = 3, upsampler: str = "pixel_shuffle_icnr", swd: bool = True):
    pl.seed_everything(seed, verbose=False)
    dm = ImageDataModule("photos", image_size=32, batch_size=4, seed=seed, train_samples=32, heldout_samples=16,
                         cache_dir=cache_dir)
    task = SuperResolutionTask(upsampler, features=8, hidden_channels=4)
    record = ResultRecord(run_id=f"sr{seed}", task="super_resolution", status="running", dataset="photos",
                          image_size=32, upsampler=upsampler, upsampler_stages=task.stage_names, seed=seed,
                          max_steps=steps)
    fidelity = FidelityMetrics(2, 16, batch_size=8, swd=swd)
    callbacks = [ArtifactMetrics(0, 16, batch_size=8, gradient=False, quality=swd), fidelity, ResultRecorder(record, 4)]
    trainer = pl.Trainer(max_steps=steps, logger=False, callbacks=callbacks, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(task, datamodule=dm)
    return trainer, task, dm, fidelity


@pytest.fixture(scope="module")
def two_fits(cache_dir, tmp_path_factory):
    # SWD is the slow part: the second run, there only to change the seed, goes without it.
    return [_fit(cache_dir, tmp_path_factory.mktemp(f"fit{seed}"), seed, swd=seed == 0) for seed in (0, 1)]


def test_a_fit_records_fidelity_artifacts_and_the_bicubic_baseline(two_fits):
    trainer, task, _, _ = two_fits[0]
    record = read_record(trainer.default_root_dir)  # the file passes the record checks
    assert record.status == "finished" and record.task == "super_resolution" and record.steps == 3
    metrics = record.metrics
    for key in ("psnr", "psnr_rgb", "psnr_bicubic", "psnr_rgb_bicubic"):
        assert 5 < metrics[key] < 80, key
    for key in ("ssim", "ssim_rgb", "ssim_bicubic", "ssim_rgb_bicubic"):
        assert -1 <= metrics[key] <= 1, key
    for key in ("checkerboard", "checkerboard_upper", "residual_checkerboard", "residual_checkerboard_upper",
                "residual_checkerboard_bicubic", "residual_checkerboard_upper_bicubic", "checkerboard_bicubic",
                "checkerboard_upper_bicubic", "swd", "swd_bicubic"):
        assert metrics[key] is not None and metrics[key] >= 0, key
    assert metrics["residual_checkerboard_upper"] >= metrics["residual_checkerboard"]
    assert set(record.baseline) >= {"psnr", "ssim", "psnr_rgb", "ssim_rgb", "swd", "kind"}
    assert record.protocol["fidelity_samples"] == 16 and record.protocol["fidelity_border"] == 2
    assert task.diverged is None


def test_bicubic_values_equal_a_direct_computation_and_do_not_depend_on_the_seed(two_fits):
    (_, _, dm, fidelity), (_, _, _, other) = two_fits
    hr = dm.heldout_images(16)
    direct = fidelity_scores(bicubic_upscale(downscale(hr, 2), 2), hr, border=2, levels=1)
    for key, value in direct.items():
        assert fidelity.bicubic[f"{key}_bicubic"] == pytest.approx(value, rel=1e-6), key
    assert "swd_bicubic" in fidelity.bicubic and "swd_bicubic" not in other.bicubic
    assert {key: value for key, value in fidelity.bicubic.items() if key != "swd_bicubic"} == other.bicubic
    assert fidelity.latest["psnr"] != other.latest["psnr"]  # the models, unlike the baseline, differ


def test_task_serves_degraded_held_out_images_and_resumes_from_a_checkpoint(two_fits, tmp_path):
    trainer, task, dm, _ = two_fits[0]
    triplets = task.sample()
    hr = dm.heldout_images(8)
    assert triplets.shape == (24, 3, 32, 32)
    torch.testing.assert_close(triplets[2::3], hr)
    torch.testing.assert_close(triplets[0::3], bicubic_upscale(downscale(hr, 2), 2))
    assert task.metric_samples(8, seed=0, batch_size=3, rank=1, world_size=2).shape == (4, 3, 32, 32)
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    restored = SuperResolutionTask.load_from_checkpoint(tmp_path / "last.ckpt")
    assert restored.stage_names == task.stage_names and restored.scale == 2
    lr = downscale(hr, 2)
    torch.testing.assert_close(restored.super_resolve(lr), task.super_resolve(lr))


def test_training_images_the_scale_does_not_divide_stop_before_the_first_step(cache_dir, tmp_path):
    dm = ImageDataModule("photos", image_size=18, batch_size=4, train_samples=8, heldout_samples=4, cache_dir=cache_dir)
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    with pytest.raises(ValueError, match="divisible by the scale 4; got 18×18"):
        trainer.fit(SuperResolutionTask("nearest_conv", scale=4, features=4, hidden_channels=4), datamodule=dm)


def test_fidelity_metrics_say_what_a_module_lacks(tmp_path):
    dm = ImageDataModule("digits", image_size=16, batch_size=4, heldout_samples=8)
    trainer = pl.Trainer(max_steps=1, logger=False, callbacks=[FidelityMetrics()], enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    with pytest.raises(TypeError, match="FidelityMetrics needs degrade\\(hr\\), bicubic\\(lr\\)"):
        trainer.fit(GANTask("nearest_conv", image_size=16, gen_channels=4, disc_channels=4, channels=1), datamodule=dm)
    with pytest.raises(ValueError, match="num_samples must be a positive integer; got 0"):
        FidelityMetrics(num_samples=0)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"loss": "l3"}, "loss must be one of 'l1', 'l2'; got 'l3'"),
    ({"lr": 0.0}, "lr must be a positive finite number"),
    ({"scale": 6}, "scale must be one of 2, 4, 8"),
])
def test_task_rejects_bad_settings_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SuperResolutionTask(**kwargs)


# -- photo-level held-out split -------------------------------------------------------------------

def test_held_out_photographs_never_reach_training_and_do_not_depend_on_the_seed(cache_dir):
    held = ("astronaut", "stereo_motorcycle")
    modules = [HeldoutPhotosDataModule(image_size=16, batch_size=4, seed=seed, heldout_photos=held, train_samples=12,
                                       heldout_samples=6, cache_dir=cache_dir) for seed in (0, 1)]
    for dm in modules:
        dm.prepare_data()
        dm.setup()
    first, second = modules
    assert torch.equal(first.heldout_images(), second.heldout_images())
    train = [first.train_dataloader().dataset[i] for i in range(len(first.train_dataloader().dataset))]
    assert len(first.heldout_images()) == 6 and len(train) == 12
    assert "astronaut, stereo_motorcycle" in first.describe()["heldout_from"]
    # Every served crop is a crop of the right photographs in the cached builds.
    per_photo = len(PHOTO_NAMES)
    train_build = load_photo_cache(photo_cache_path(cache_dir, 16, per_photo * 2, per_photo, 0, 0), 16)["train"]
    heldout_build = load_photo_cache(photo_cache_path(cache_dir, 16, per_photo * 3, per_photo, 0, 0), 16)["train"]
    train_names = {tuple(img.flatten().tolist()): name for img, name in zip(train_build.images, train_build.photo)}
    heldout_names = {tuple(img.flatten().tolist()): name for img, name in zip(heldout_build.images, heldout_build.photo)}
    heldout = (first.heldout_images() * 255).round().to(torch.uint8)
    assert all(train_names[tuple(img.flatten().tolist())] not in held for img in train)
    assert all(heldout_names[tuple(img.flatten().tolist())] in held for img in heldout)
    with pytest.raises(ValueError, match="heldout_photos must be distinct names"):
        HeldoutPhotosDataModule(heldout_photos=("astronaut", "lena"))
    with pytest.raises(ValueError, match="heldout_photos must be distinct names"):
        HeldoutPhotosDataModule(heldout_photos=PHOTO_NAMES)
