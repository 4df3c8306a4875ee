"""Style transfer: the transformer net, the loss network and its offline fallback, losses, task, recipe."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from lightning_checkerboard._lightning import pl
import torch
from PIL import Image

from _recipes import load_recipe
from lightning_checkerboard import list_upsamplers
from lightning_checkerboard.data import STYLE_IMAGES, DatasetError, ImageDataModule, load_style_image
from lightning_checkerboard.models import LossNetworkError, TransformerNet, VGGFeatures, load_loss_network
from lightning_checkerboard.models import loss_network as loss_network_module
from lightning_checkerboard.models.loss_network import VGG_LAYERS
from lightning_checkerboard.records import read_record
from lightning_checkerboard.tasks import StyleTransferTask
from lightning_checkerboard.tasks.style_transfer import content_loss, gram_matrix, style_loss, total_variation

recipe = load_recipe("style_transfer")


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    """Whatever the machine's network, torchvision's server counts as unreachable here."""
    monkeypatch.setattr(loss_network_module, "_server_answers", lambda url, timeout=3.0: "unreachable (test)")


@pytest.fixture(scope="module")
def random_vgg() -> VGGFeatures:
    return load_loss_network("random", seed=0)


def _torchvision_style_state(seed: int = 1) -> dict[str, torch.Tensor]:
    """A state dict with torchvision's VGG-16 keys and shapes (features up to conv5_3 and a classifier)."""
    torch.manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    width, index = 3, 0
    for item in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if item == "M":
            index += 1
            continue
        state[f"features.{index}.weight"] = torch.randn(item, width, 3, 3) * 0.05
        state[f"features.{index}.bias"] = torch.randn(item) * 0.01
        width, index = item, index + 2
    state["classifier.0.weight"] = torch.randn(8, 8)
    return state


# -- losses ---------------------------------------------------------------------------------------


def test_gram_matrix_matches_a_direct_double_loop():
    feats = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    gram = gram_matrix(feats)
    for b in range(2):
        for i in range(3):
            for j in range(3):
                direct = sum(float(feats[b, i, y, x] * feats[b, j, y, x]) for y in range(4) for x in range(5))
                assert gram[b, i, j].item() == pytest.approx(direct / (3 * 4 * 5), rel=1e-12)


def test_content_loss_is_the_squared_error_relative_to_the_batchs_feature_energy():
    target = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    target[0] *= 1e-3  # a dark, flat image: its own tiny energy must not blow up its share
    value = target + 0.1 * torch.randn_like(target)
    direct = sum(float(((value[b] - target[b]) ** 2).sum()) for b in range(3)) / float((target**2).sum())
    assert content_loss(value, target).item() == pytest.approx(direct, rel=1e-12)
    assert content_loss(target, target).item() == 0.0


def test_style_loss_sums_relative_gram_errors_over_layers():
    feats = {"a": torch.randn(2, 3, 4, 4, dtype=torch.float64), "b": torch.randn(2, 5, 2, 2, dtype=torch.float64)}
    style = {"a": torch.randn(1, 3, 4, 4, dtype=torch.float64), "b": torch.randn(1, 5, 2, 2, dtype=torch.float64)}
    targets = {k: gram_matrix(v)[0] for k, v in style.items()}
    direct = 0.0
    for name in feats:
        g, t = gram_matrix(feats[name]), targets[name]
        direct += np.mean([float(((g[b] - t) ** 2).sum() / (t**2).sum()) for b in range(2)])
    assert style_loss(feats, targets).item() == pytest.approx(direct, rel=1e-12)
    same = {k: v.expand(2, -1, -1, -1) for k, v in style.items()}
    assert style_loss(same, targets).item() == pytest.approx(0.0, abs=1e-24)
    with pytest.raises(ValueError, match="at least one layer"):
        style_loss(feats, {})


def test_total_variation_matches_neighbour_differences():
    img = torch.tensor([[[[0.0, 1.0], [3.0, 7.0]]]])
    # vertical |3-0|, |7-1| → mean 4.5; horizontal |1-0|, |7-3| → mean 2.5
    assert total_variation(img).item() == pytest.approx(7.0)
    assert total_variation(torch.ones(1, 3, 8, 8)).item() == 0.0


def test_losses_do_not_depend_on_the_loss_networks_feature_scale():
    """The relative losses are why one default weight serves pretrained and random networks."""
    feats = {"a": torch.rand(2, 4, 6, 6, dtype=torch.float64)}
    style = gram_matrix(torch.rand(1, 4, 6, 6, dtype=torch.float64))[0]
    scaled = {"a": feats["a"] * 37.0}
    assert style_loss(scaled, {"a": style * 37.0**2}).item() == pytest.approx(style_loss(feats, {"a": style}).item())
    target = torch.rand(2, 4, 6, 6, dtype=torch.float64)
    assert content_loss(feats["a"] * 37, target * 37).item() == pytest.approx(content_loss(feats["a"], target).item())


# -- transformer net ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list_upsamplers())
def test_transformer_net_keeps_the_image_shape_and_trains_every_parameter(name):
    torch.manual_seed(0)
    net = TransformerNet(name, base_channels=4, num_residual_blocks=1)
    x = torch.rand(2, 3, 20, 24)
    y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_transformer_net_takes_one_upsampler_per_stage_and_has_johnsons_layout():
    net = TransformerNet("deconv,nearest_conv")
    assert net.stage_names == ["deconv", "nearest_conv"]
    assert len(net.residuals) == 5
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].kernel_size == (9, 9) and convs[-1].kernel_size == (9, 9)
    assert [c.stride for c in convs[1:3]] == [(2, 2), (2, 2)]
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules()) == 2 + 1 + 10 + 2


@pytest.mark.parametrize(("spec", "match"), [
    ("deconv,deconv,deconv", "2"),
    ("bogus", "bogus"),
])
def test_transformer_net_rejects_bad_upsampler_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        TransformerNet(spec)


def test_transformer_net_rejects_sizes_it_cannot_reproduce():
    net = TransformerNet("nearest_conv", base_channels=4, num_residual_blocks=1)
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.rand(1, 3, 30, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.rand(1, 1, 32, 32))


# -- loss network ---------------------------------------------------------------------------------


def test_random_loss_network_is_seeded_frozen_and_returns_the_four_layers(random_vgg):
    again = load_loss_network("random", seed=0)
    other = load_loss_network("random", seed=1)
    w0 = random_vgg.features[0].weight
    assert torch.equal(w0, again.features[0].weight) and not torch.equal(w0, other.features[0].weight)
    assert random_vgg.weights == "vgg16-random-seed0" and not random_vgg.pretrained
    assert not any(p.requires_grad for p in random_vgg.parameters())
    random_vgg.train()
    assert not random_vgg.training
    out = random_vgg(torch.rand(2, 3, 32, 32))
    assert list(out) == list(VGG_LAYERS)
    assert [tuple(v.shape[1:]) for v in out.values()] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)]
    assert all(v.std() > 1e-3 for v in out.values())  # the random features do not collapse


def test_loss_network_passes_gradients_to_its_input(random_vgg):
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    random_vgg(x)["relu4_3"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_auto_falls_back_to_a_random_network_offline_with_a_loud_warning():
    with pytest.warns(UserWarning, match="PRETRAINED VGG-16 UNAVAILABLE.*unreachable"):
        net = load_loss_network("auto", seed=3)
    assert net.weights == "vgg16-random-seed3"


def test_vgg16_offline_is_an_error_that_says_what_to_do():
    with pytest.raises(LossNetworkError, match="pretrained VGG-16 unavailable: torchvision's VGG-16 weights are not in"):
        load_loss_network("vgg16")


def test_torchvisions_cached_weights_are_used_without_network(monkeypatch, tmp_path, recwarn):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    state = _torchvision_style_state()
    torch.save(state, tmp_path / "checkpoints" / "vgg16-397923af.pth")
    net = load_loss_network("vgg16")
    assert net.weights == "vgg16-imagenet" and net.pretrained
    assert torch.equal(net.features[21].weight, state["features.21.weight"])  # conv4_3
    assert load_loss_network("auto").weights == "vgg16-imagenet"
    assert not [w for w in recwarn if "VGG-16" in str(w.message)]


def test_an_explicit_weights_file_is_loaded_and_bad_files_are_reported(tmp_path):
    good = tmp_path / "vgg.pth"
    torch.save(_torchvision_style_state(), good)
    assert load_loss_network("vgg16", weights_path=good).weights == "vgg16-file:vgg.pth"
    with pytest.raises(LossNetworkError, match="does not exist"):
        load_loss_network("vgg16", weights_path=tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(LossNetworkError, match="cannot be read"):
        load_loss_network("vgg16", weights_path=junk)
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, wrong)
    with pytest.raises(LossNetworkError, match="do not fit"):
        load_loss_network("vgg16", weights_path=wrong)
    with pytest.warns(UserWarning, match="do not fit"):
        assert load_loss_network("auto", weights_path=wrong).weights == "vgg16-random-seed0"


def test_unknown_loss_network_names_the_choices():
    with pytest.raises(ValueError, match="^source must be one of 'auto', 'vgg16', 'random'; got 'vgg19'.$"):
        load_loss_network("vgg19")


# -- style images ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gravel", "logo", "immunohistochemistry"])
def test_bundled_style_images_load_as_rgb_in_unit_range(name):
    image = load_style_image(name, 32)
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0


def test_every_listed_style_image_is_bundled():
    for name in STYLE_IMAGES:
        assert load_style_image(name, 16).shape == (3, 16, 16), name


def test_style_image_from_a_file(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(np.tile(np.arange(40, dtype=np.uint8) * 6, (30, 1))).save(path)
    image = load_style_image(str(path), 20)
    assert image.shape == (3, 20, 20) and torch.equal(image[0], image[2])


@pytest.mark.parametrize(("make", "match"), [
    (lambda d: d / "nope.jpg", "neither a file nor a bundled image"),
    (lambda d: d, "is not a file"),
    (lambda d: (d / "bad.png").write_bytes(b"\x89PNG garbage") and d / "bad.png", "cannot be read as an image"),
])
def test_missing_or_unreadable_style_image_is_a_one_line_dataset_error(tmp_path, make, match):
    with pytest.raises(DatasetError, match=match) as info:
        load_style_image(str(make(tmp_path)), 32)
    assert "\n" not in str(info.value)


# -- task ------------------------------------------------------------------------------------------


def _task(upsampler="nearest_conv", **kwargs) -> StyleTransferTask:
    torch.manual_seed(0)
    kwargs.setdefault("loss_network", load_loss_network("random"))
    return StyleTransferTask(upsampler, style_image=load_style_image("gravel", 32), base_channels=4, **kwargs)


def test_task_losses_are_the_weighted_terms_and_tv_appears_only_when_on():
    task = _task(content_weight=2.0, style_weight=3.0)
    content = torch.rand(2, 3, 32, 32)
    terms = task.losses(content)
    assert set(terms) == {"content", "style", "total"}
    assert terms["total"].item() == pytest.approx(2 * terms["content"].item() + 3 * terms["style"].item(), rel=1e-6)
    with_tv = _task(tv_weight=0.5).losses(content)
    assert with_tv["total"].item() == pytest.approx(
        with_tv["content"].item() + 1.0 * with_tv["style"].item() + 0.5 * with_tv["tv"].item(), rel=1e-6)


def test_task_keeps_the_loss_network_out_of_parameters_and_checkpoints():
    task = _task()
    names = {name for name, _ in task.named_parameters()}
    assert names and all(name.startswith("net.") for name in names)
    state = task.state_dict()
    assert "style_image" in state and not any("features" in key for key in state)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"content_weight": 0.0}, "content_weight must be a finite number > 0; got 0.0"),
    ({"style_weight": float("nan")}, "style_weight"),
    ({"tv_weight": -1.0}, "tv_weight must be a finite number >= 0; got -1.0"),
    ({"lr": 0}, "lr must be a finite number > 0; got 0"),
    ({"content_layer": "relu5_3"}, "content_layer must be one of"),
    ({"style_layers": ()}, "style_layers must be a non-empty subset"),
    ({"style_layers": ("relu1_2", "conv9")}, "style_layers"),
])
def test_task_rejects_bad_settings_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _task(**kwargs)


@pytest.mark.parametrize(("image", "match"), [
    (torch.rand(32, 32), r"\(3, H, W\)"),
    (torch.rand(3, 8, 40), "shorter side must be an integer of at least 16"),
])
def test_task_rejects_bad_style_images(image, match):
    with pytest.raises(ValueError, match=match):
        StyleTransferTask("deconv", style_image=image, loss_network=load_loss_network("random"))


def test_task_trains_in_a_trainer_and_stops_on_a_nan_loss(tmp_path):
    dm = ImageDataModule("digits", image_size=16, batch_size=4, channels=3, heldout_samples=8)
    task = StyleTransferTask("deconv", style_image=load_style_image("gravel", 16), base_channels=4,
                             loss_network=load_loss_network("random"))
    before = {k: v.clone() for k, v in task.net.state_dict().items()}
    trainer = pl.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, use_distributed_sampler=False)
    trainer.fit(task, datamodule=dm)
    assert trainer.global_step == 3 and task.diverged is None
    assert any(not torch.equal(before[k], v) for k, v in task.net.state_dict().items())
    pairs = task.sample()
    assert pairs.shape == (16, 3, 16, 16) and torch.equal(pairs[0], dm.heldout_images(1)[0].expand(3, -1, -1))
    assert task.metric_samples(8, seed=0, batch_size=3, rank=1, world_size=2).shape == (4, 3, 16, 16)

    with torch.no_grad():
        task.net.head[1].bias.fill_(float("nan"))
    weights = {k: v.clone() for k, v in task.net.state_dict().items()}
    trainer = pl.Trainer(max_steps=6, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, use_distributed_sampler=False)
    trainer.fit(task, datamodule=dm)
    assert task.diverged and "style-transfer loss became nan" in task.diverged
    assert all(torch.equal(weights[k].nan_to_num(), v.nan_to_num()) for k, v in task.net.state_dict().items())


# -- recipe ---------------------------------------------------------------------------------------


def test_recipe_smoke_train_with_wandb_offline_leaves_a_record_naming_the_loss_network(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    code = recipe.run_cli(recipe.main, [
        "--upsampler", "deconv", "--content-dataset", "digits", "--image-size", "16", "--base-channels", "4",
        "--batch-size", "4", "--max-steps", "4", "--eval-every", "2", "--eval-samples", "8", "--style", "gravel",
        "--output-dir", str(tmp_path),
    ])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert "PRETRAINED VGG-16 UNAVAILABLE" in captured.err
    (run_dir,) = tmp_path.glob("style_transfer/digits/deconv/seed0-*")
    record = read_record(run_dir)
    assert record.task == "style_transfer" and record.status == "finished" and record.steps == 4
    assert record.upsampler_stages == ["deconv", "deconv"]
    assert record.protocol["loss_network"] == "vgg16-random-seed0" and record.protocol["eval_samples"] == 8
    assert record.wandb["mode"] == "offline"
    for key in ("checkerboard", "checkerboard_ratio", "pnr_db_period_2", "pnr_db_period_4"):
        assert math.isfinite(record.metrics[key]), key
    assert "gradient_checkerboard" not in record.metrics and "swd" not in record.metrics
    # the quality number: the task's own loss on held-out photos, beside the untrained network's
    assert record.metrics["heldout_loss"] > 0 and record.baseline["heldout_loss"] > 0
    assert record.metrics["heldout_loss"] == pytest.approx(
        record.metrics["heldout_content"] + record.metrics["heldout_style"])  # weights 1 and 1
    assert record.metrics["checkerboard_upper"] >= record.metrics["checkerboard"]
    assert "held-out loss" in captured.out
    assert sorted(p.name for p in (run_dir / "samples").glob("*.png")) == ["final.png", "step_000002.png"]
    grid = Image.open(run_dir / "samples" / "final.png")
    assert grid.size == (4 * 18 + 2, 4 * 18 + 2)  # 8 pairs, 4 images per row, 2-pixel padding
    assert list(run_dir.glob("wandb/offline-run-*/run-*.wandb"))


@pytest.mark.parametrize(("argv", "message"), [
    (["--image-size", "30"], "--image-size must be a multiple of 4"),
    (["--style-size", "8"], "--style-size must be an integer of at least 16 pixels; got 8"),
    (["--loss-network", "random", "--loss-network-weights", "w.pth"], "--loss-network-weights needs"),
    (["--style", "no/such/painting.jpg"], "neither a file nor a bundled image"),
    (["--upsampler", "deconv,deconv,deconv"], "2"),
    (["--upsampler", "nearest_cnov"], "nearest_conv"),
    (["--loss-network", "vgg16"], "--loss-network vgg16"),
    (["--content-dataset", "folder:/no/such/dir"], "does not exist"),
])
def test_recipe_turns_user_mistakes_into_one_line_and_exit_code_2(tmp_path, capsys, argv, message):
    code = recipe.run_cli(recipe.main, [*argv, "--output-dir", str(tmp_path), "--logger", "none"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not list(tmp_path.rglob("result.json"))


# -- the evidence pipeline: run_grid --task style_transfer, then style_figure ---------------------


TINY = ["--content-dataset", "digits", "--image-size", "16", "--base-channels", "4", "--max-steps", "2",
        "--eval-every", "0", "--eval-samples", "8", "--style", "gravel", "--loss-network", "random"]


def test_run_grid_runs_the_style_recipe_once_per_combination_and_skips_finished_ones(tmp_path, monkeypatch, capsys):
    grid = load_recipe("run_grid")
    runs = tmp_path / "runs"
    assert recipe.run_cli(recipe.main, [*TINY, "--upsampler", "deconv", "--logger", "none",
                                        "--output-dir", str(runs)]) == 0
    commands: list[list[str]] = []

    def fake_run(command, **kwargs):
        commands.append(command)
        return grid.subprocess.CompletedProcess(command, 0, "status: finished\ncheckerboard score …: 0.000", "")

    monkeypatch.setattr(grid.subprocess, "run", fake_run)
    capsys.readouterr()
    code = grid.main(["--task", "style_transfer", "--upsamplers", "deconv", "nearest_conv", "--seeds", "0",
                      "--runs", str(runs), "--no-build", "--", *TINY])
    printed = capsys.readouterr().out
    assert code == 0 and "deconv seed 0: already finished" in printed
    (command,) = commands  # only nearest_conv seed 0 still had to run
    assert command[1].endswith("recipes/style_transfer.py")
    assert command[2:6] == ["--upsampler", "nearest_conv", "--seed", "0"] and command[-len(TINY):] == TINY
    assert "checkerboard score" in printed


def test_style_figure_reports_every_run_and_draws_the_side_by_side_figure(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "out"
    for upsampler in ("deconv", "nearest_conv"):
        assert recipe.run_cli(recipe.main, [*TINY, "--upsampler", upsampler, "--logger", "none",
                                            "--output-dir", str(runs)]) == 0
    figure = load_recipe("style_figure")
    assert figure.main(["--runs", str(runs), "--out", str(out), "--images", "2"]) == 0
    report = (out / "style_transfer.md").read_text()
    for path in runs.glob("style_transfer/digits/*/seed*/result.json"):
        record = read_record(path.parent)
        assert f"| `{record.upsampler}` | {record.seed} | {record.metrics['checkerboard']:.3f} |" in report
    payload = json.loads((out / "style_transfer.json").read_text())
    assert sorted(payload["runs"]) == ["deconv", "nearest_conv"] and payload["loss_network"] == "vgg16-random-seed0"
    png = Image.open(out / "figures" / "style_transfer.png")
    assert png.size[0] > png.size[1] > 0  # three rows (content, two upsamplers), two photos and their windows

    with pytest.raises(recipe.UsageError, match="no finished style_transfer runs of bilinear_conv"):
        figure.main(["--runs", str(runs), "--out", str(out), "--upsamplers", "bilinear_conv"])
    with pytest.raises(recipe.UsageError, match="--images must be at most the runs' held-out samples \\(8\\); got 9"):
        figure.main(["--runs", str(runs), "--out", str(out), "--images", "9"])

    from lightning_checkerboard.records import write_record

    (deconv_dir,) = runs.glob("style_transfer/digits/deconv/seed*")
    record = read_record(deconv_dir)
    record.protocol["loss_network"] = "vgg16-imagenet"  # as if this run had the pretrained network
    write_record(record, deconv_dir)
    with pytest.raises(recipe.UsageError, match="trained or measured in 2 different ways"):
        figure.main(["--runs", str(runs), "--out", str(out)])


# -- interrupt and resume ---------------------------------------------------------------------------

RESUME_FLAGS = ["--content-dataset", "digits", "--image-size", "16", "--base-channels", "4", "--batch-size", "4",
                "--max-steps", "4", "--eval-every", "2", "--eval-samples", "8", "--style", "gravel",
                "--loss-network", "random", "--logger", "none", "--seed", "2"]


def _final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_interrupted_style_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, monkeypatch):
    import os
    import signal

    from lightning_checkerboard.callbacks import RunCheckpoint

    assert recipe.run_cli(recipe.main, [*RESUME_FLAGS, "--output-dir", str(tmp_path / "straight")]) == 0
    (straight,) = (tmp_path / "straight").glob("style_transfer/digits/nearest_conv/*")

    original = RunCheckpoint.on_train_batch_end

    def interrupt(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == 3 and self.requested is None:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, trainer, pl_module, outputs, batch, batch_idx)

    with monkeypatch.context() as patch:
        patch.setattr(RunCheckpoint, "on_train_batch_end", interrupt)
        assert recipe.run_cli(recipe.main, [*RESUME_FLAGS, "--output-dir", str(tmp_path / "broken")]) == 1
    (broken,) = (tmp_path / "broken").glob("style_transfer/digits/nearest_conv/*")
    assert read_record(broken).status == "interrupted" and read_record(broken).steps == 3

    assert recipe.run_cli(recipe.main, ["--resume", str(broken)]) == 0
    assert read_record(broken).status == "finished" and read_record(broken).steps == 4
    expected, got = _final_weights(straight), _final_weights(broken)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[name], got[name]) for name in expected)
    assert read_record(broken).metrics == read_record(straight).metrics


def test_resume_refuses_a_different_loss_network(tmp_path, capsys):
    from lightning_checkerboard.records import write_record

    assert recipe.run_cli(recipe.main, [*RESUME_FLAGS, "--output-dir", str(tmp_path)]) == 0
    (run_dir,) = tmp_path.glob("style_transfer/digits/nearest_conv/*")
    record = read_record(run_dir)
    record.status, record.protocol["loss_network"] = "interrupted", "vgg16-imagenet"
    write_record(record, run_dir)
    capsys.readouterr()
    assert recipe.run_cli(recipe.main, ["--resume", str(run_dir)]) == 2
    assert "trained with loss network 'vgg16-imagenet', this machine has 'vgg16-random-seed0'" in capsys.readouterr().err


def test_article_report_states_the_style_transfer_claim_from_the_figure_recipes_json():
    report = load_recipe("article_report")

    def style(deconv, nearest):
        return {"max_steps": 200, "image_size": 128, "loss_network": "vgg16-random-seed0",
                "runs": {"deconv": [{"checkerboard": v} for v in deconv],
                         "nearest_conv": [{"checkerboard": v} for v in nearest]}}

    claim, measured, holds, command = report.style_claim(style([5.0, 7.0, 6.0], [0.0, 0.0, 0.0]))
    assert holds is True and "deconv 6.00 ± 1.00, nearest_conv 0.00 ± 0.00 levels (3 and 3 seeds" in measured
    assert "run_grid.py --task style_transfer" in command
    assert report.style_claim(style([5.0, 7.0], [0.0, 0.3]))[2] is False  # resize-conv must read 0
    assert report.style_claim(style([0.5, 7.0], [0.0, 0.09]))[2] is False  # every seed far above


# -- precision and checkpoints ---------------------------------------------------------------------


def test_losses_stay_in_float32_under_bfloat16_autocast_and_bfloat16_weights():
    task = _task()
    content = torch.rand(2, 3, 32, 32)
    reference = task.losses(content)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = task.losses(content)
    assert all(v.dtype == torch.float32 for v in mixed.values())
    assert mixed["style"].item() == pytest.approx(reference["style"].item(), rel=0.05)
    assert all(t.dtype == torch.float32 for t in task.style_targets().values())
    task.net.to(torch.bfloat16)  # what precision="bf16-true" does to the trained network
    low = task.losses(content)
    assert torch.isfinite(low["total"]) and low["total"].dtype == torch.float32
    low["total"].backward()
    assert all(p.grad is not None for p in task.net.parameters())
    assert task.stylise(content).dtype == torch.float32


def test_gram_matrices_of_large_activations_would_overflow_float16_but_the_loss_does_not():
    task = _task()
    big = torch.rand(1, 3, 64, 64) * 40  # activations far beyond float16's range once squared and summed
    assert not torch.isfinite(gram_matrix(task.loss_network(big)["relu1_2"].half())).all()
    assert torch.isfinite(task.losses(big.clamp(0, 1))["total"])


def test_a_trained_task_loads_from_its_checkpoint_with_the_standard_lightning_call(tmp_path):
    dm = ImageDataModule("digits", image_size=16, batch_size=4, channels=3, heldout_samples=8)
    task = StyleTransferTask("deconv", style_image=load_style_image("gravel", 20), base_channels=4,
                             loss_network=load_loss_network("random"))
    trainer = pl.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, use_distributed_sampler=False)
    trainer.fit(task, datamodule=dm)
    trainer.save_checkpoint(tmp_path / "task.ckpt")
    loaded = StyleTransferTask.load_from_checkpoint(tmp_path / "task.ckpt", loss_network=load_loss_network("random"))
    assert torch.equal(loaded.style_image, task.style_image) and loaded.stage_names == ["deconv", "deconv"]
    content = dm.heldout_images(2)
    assert torch.equal(loaded.stylise(content), task.stylise(content))
