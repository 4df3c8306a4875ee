"""GANTask's evaluation generator: the weight average (EMA) with standing statistics, and SN in D."""

from __future__ import annotations

import re

import pytest
import torch

from lightning_checkerboard.models.dcgan import DCGANDiscriminator
from lightning_checkerboard.tasks import GANTask


def _task(**kwargs) -> GANTask:
    torch.manual_seed(0)
    return GANTask("nearest_conv", image_size=16, gen_channels=8, disc_channels=8, num_fixed_samples=8, **kwargs)


def test_without_ema_the_live_generator_samples():
    task = _task()
    assert task.generator_ema is None and task.eval_generator is task.generator


def test_ema_follows_the_live_weights_with_a_warmed_up_decay():
    task = _task(ema_decay=0.999)
    before = [p.clone() for p in task.generator_ema.parameters()]
    with torch.no_grad():
        for p in task.generator.parameters():
            p.add_(1.0)
    task._update_ema()  # iteration 0: decay min(0.999, 1 / 10) = 0.1
    for average, old, live in zip(task.generator_ema.parameters(), before, task.generator.parameters()):
        torch.testing.assert_close(average, 0.1 * old + 0.9 * live)
    assert not any(p.requires_grad for p in task.generator_ema.parameters())


def test_ema_samples_come_from_the_average_with_its_own_batchnorm_statistics():
    task = _task(ema_decay=0.9)
    with torch.no_grad():
        for p in task.generator.parameters():
            p.mul_(1.5)
    task._update_ema()
    samples = task.sample()
    # The live generator's running statistics are untouched; the average got standing statistics.
    live_norm = next(m for m in task.generator.modules() if isinstance(m, torch.nn.BatchNorm2d))
    ema_norm = next(m for m in task.generator_ema.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.equal(live_norm.running_mean, torch.zeros_like(live_norm.running_mean))
    assert not torch.equal(ema_norm.running_mean, torch.zeros_like(ema_norm.running_mean))
    task.generator_ema.eval()
    expected = ((task.generator_ema(task.fixed_noise) + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(samples, expected)
    # Standing statistics are recomputed only when the averaged weights change.
    forwards = []
    task.generator_ema.register_forward_hook(lambda module, args, out: forwards.append(module.training))
    torch.testing.assert_close(task.sample(), samples)
    assert forwards == [False]  # one eval forward, no train-mode statistics pass
    task._update_ema()
    task.sample()
    assert forwards[1:] == [True] * GANTask._STANDING_BATCHES + [False]


def test_ema_is_saved_with_the_task():
    task = _task(ema_decay=0.99)
    assert any(key.startswith("generator_ema.") for key in task.state_dict())


@pytest.mark.parametrize("decay", [-0.1, 1.0, float("nan"), True, "0.9"])
def test_bad_ema_decay_is_rejected(decay):
    with pytest.raises(ValueError, match="ema_decay"):
        _task(ema_decay=decay)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"loss": "wasserstein"}, "loss must be one of 'nonsaturating', 'hinge'; got 'wasserstein'."),
        ({"lr_g": 0.0}, "lr_g must be a finite number > 0; got 0.0."),
        ({"lr_d": float("inf")}, "lr_d must be a finite number > 0; got inf."),
        ({"betas": (0.5,)}, "betas must be a pair of numbers in [0, 1); got (0.5,)."),
        ({"betas": (0.5, 1.0)}, "betas[1] must be a finite number >= 0 and < 1; got 1.0."),
    ],
)
def test_bad_optimiser_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        _task(**kwargs)


def test_bad_disc_norm_is_rejected():
    with pytest.raises(ValueError, match="^disc_norm must be one of 'batch', 'spectral', 'none'; got 'layer'.$"):
        _task(disc_norm="layer")


def test_spectral_discriminator_has_unit_spectral_norm_and_no_batchnorm():
    torch.manual_seed(0)
    d = DCGANDiscriminator(image_size=16, base_channels=8, norm="spectral")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    for _ in range(30):  # power iterations run in training mode
        d(torch.randn(2, 3, 16, 16))
    conv = d.net[2]
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    assert float(sigma) == pytest.approx(1.0, rel=0.05)
