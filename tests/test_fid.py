"""FID: equality with torch-fidelity, the real-statistics cache, the offline policy, input checks, DDP.

Everything runs offline on CPU: the Inception weights are a seeded random state dict
(``lightning_checkerboard.metrics._inception``), kaiming-initialised so features stay distinct and
FIDs are far from 0. Every image goes through Inception at 299×299, so the sets are 8 images each at
32×32 and the expensive results are module fixtures shared by several tests. The DDP test runs two
processes and is marked slow (``-m slow``).
"""

from __future__ import annotations

import math
import os
import shutil
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch_fidelity
from torch.utils.data import Dataset

from lightning_checkerboard.metrics import _fid_cache as fid_cache_module
from lightning_checkerboard.metrics import _inception as inception_module
from lightning_checkerboard.metrics import fid as fid_module
from lightning_checkerboard.metrics._inception import write_random_inception_weights
from lightning_checkerboard.metrics.fid import (
    FID,
    INCEPTION_WEIGHTS_FILENAME,
    OFFLINE_ENV_VAR,
    FIDUnavailableWarning,
    inception_extractor_id,
    inception_weights_status,
    resolve_inception_weights,
)

N_IMAGES = 8
SIZE = 32
FINGERPRINT = "test-gradients-v1"


# ---------------------------------------------------------------------------------------- fixtures



@pytest.fixture(autouse=True)
def _offline_isolated(tmp_path, monkeypatch):
    """No test reads the user's caches or touches the network; each starts with no warnings issued."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg_cache"))
    monkeypatch.delenv(OFFLINE_ENV_VAR, raising=False)

    def no_network(url, dst, timeout=0.0):
        raise OSError("network unreachable (tests run offline)")

    monkeypatch.setattr(inception_module, "_download", no_network)
    monkeypatch.setattr(inception_module, "_warned_reasons", set())


def _make_images(n: int, offset: float, seed: int) -> torch.Tensor:
    """Colour gradients plus noise: smooth structure like photos, two sets with different statistics."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, SIZE), torch.linspace(0, 1, SIZE), indexing="ij")
    base = torch.stack([xx, yy, (xx + yy) / 2])[None] * 150 + offset
    noise = torch.rand(n, 3, SIZE, SIZE, generator=gen) * 80
    return (base + noise).clamp(0, 255).round().to(torch.uint8)


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    return _make_images(N_IMAGES, 0.0, seed=1), _make_images(N_IMAGES, 60.0, seed=2)


class _UInt8Images(Dataset):
    """The form torch-fidelity takes in-memory images in: a Dataset of uint8 (3, H, W) tensors."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


@pytest.fixture(scope="module")
def torch_fidelity_fid(images, inception_weights) -> float:
    real, fake = images
    result = torch_fidelity.calculate_metrics(
        input1=_UInt8Images(real),
        input2=_UInt8Images(fake),
        fid=True,
        cuda=False,
        feature_extractor_weights_path=str(inception_weights),
        cache=False,
        save_cpu_ram=True,  # no DataLoader worker processes
        verbose=False,
        batch_size=N_IMAGES,
    )
    return result["frechet_inception_distance"]


@pytest.fixture(scope="module")
def project_fid(images, inception_weights, tmp_path_factory) -> tuple[float, Path]:
    """The project's FID on all images, computed once with a cache key; returns (value, cache_dir)."""
    real, fake = images
    cache_dir = tmp_path_factory.mktemp("fid_cache")
    metric = FID(weights_path=inception_weights, cache_dir=cache_dir)
    assert metric.use_real_cache(FINGERPRINT, SIZE, N_IMAGES) is False
    metric.update(real.float() / 255, real=True)  # float path for real, uint8 path for fake
    metric.update(fake, real=False)
    return metric.compute().item(), cache_dir


@pytest.fixture(scope="module")
def small_metric(inception_weights, tmp_path_factory) -> FID:
    """A metric for tests that only check arguments (nothing reaches the extractor)."""
    return FID(weights_path=inception_weights, cache_dir=tmp_path_factory.mktemp("unused_cache"))


@pytest.fixture
def fresh_metric(inception_weights, tmp_path) -> FID:
    """A metric of its own for tests that change its cache settings."""
    return FID(weights_path=inception_weights, cache_dir=tmp_path / "cache")


def _count_extractor_images(metric: FID) -> list[int]:
    seen: list[int] = []
    metric.inception.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    return seen


# ------------------------------------------------------------------------------- (a) correctness


def test_fid_equals_torch_fidelity_calculate_metrics(project_fid, torch_fidelity_fid):
    ours, _ = project_fid
    assert torch_fidelity_fid > 1.0, "features collapsed: the random weights would hide errors"
    assert abs(ours - torch_fidelity_fid) / torch_fidelity_fid < 1e-3  # measured: 1.5e-8


def test_fid_names_its_extractor_with_the_weights_hash(inception_weights, small_metric):
    assert small_metric.extractor == inception_extractor_id(inception_weights)
    assert small_metric.extractor.startswith("torch-fidelity inception-v3-compat 2048 (weights sha256:")
    info = small_metric.result_info()
    assert info["fid_available"] is True and info["fid_extractor"] == small_metric.extractor


def test_different_weights_give_a_different_extractor_name(inception_weights, tmp_path):
    other = write_random_inception_weights(tmp_path / "seed1.pth", seed=1)
    assert inception_extractor_id(other) != inception_extractor_id(inception_weights)


def test_grey_images_are_repeated_to_rgb_and_reset_keeps_real_statistics(inception_weights, tmp_path):
    metric = FID(weights_path=inception_weights, cache_dir=tmp_path)
    grey = torch.rand(2, 1, SIZE, SIZE)
    metric.update(grey, real=True)
    metric.update(grey.repeat(1, 3, 1, 1), real=False)
    torch.testing.assert_close(metric.real_features_sum, metric.fake_features_sum)
    metric.reset()
    assert int(metric.real_features_num_samples) == 2
    assert int(metric.fake_features_num_samples) == 0


def test_real_covariance_factor_is_recomputed_when_real_statistics_change(fresh_metric):
    """compute() reuses the real covariance's eigen-factor; it must notice new real statistics."""
    gen = torch.Generator().manual_seed(0)

    def set_features(kind: str, n: int) -> None:
        features = torch.rand(n, 2048, generator=gen, dtype=torch.float64)
        setattr(fresh_metric, f"{kind}_features_sum", features.sum(0))
        setattr(fresh_metric, f"{kind}_features_cov_sum", features.T @ features)
        setattr(fresh_metric, f"{kind}_features_num_samples", torch.tensor(n))

    raw_compute = type(fresh_metric).compute  # the unwrapped method: torchmetrics would return a cached value
    set_features("real", 3)
    set_features("fake", 3)
    before = raw_compute(fresh_metric)
    set_features("real", 4)
    after = raw_compute(fresh_metric)
    fresh_metric._real_root_memo = None
    assert after == raw_compute(fresh_metric) and after != before


def test_states_reduce_with_sum(small_metric):
    from torchmetrics.utilities.data import dim_zero_sum

    names = [f"{k}_features_{s}" for k in ("real", "fake") for s in ("sum", "cov_sum", "num_samples")]
    assert {name: small_metric._reductions[name] for name in names} == dict.fromkeys(names, dim_zero_sum)


# --------------------------------------------------------------------------- (b) real-stats cache


def test_second_run_loads_real_statistics_and_skips_the_extractor(project_fid, images, inception_weights):
    first, cache_dir = project_fid
    real, fake = images
    files = list(cache_dir.iterdir())
    assert len(files) == 1 and files[0].suffix == ".pt", files  # written atomically: no temp file left
    metric = FID(weights_path=inception_weights, cache_dir=cache_dir)
    seen = _count_extractor_images(metric)
    assert metric.use_real_cache(FINGERPRINT, SIZE, N_IMAGES) is True
    metric.update(real, real=True)  # ignored: the cache already holds these images
    metric.update(fake, real=False)
    second = metric.compute().item()
    assert seen == [N_IMAGES]  # the fake batch only
    assert second == pytest.approx(first, rel=1e-6)
    assert metric.result_info()["fid_real_from_cache"] is True


@pytest.mark.parametrize(
    ("fingerprint", "resolution", "num_samples"),
    [("other-dataset", SIZE, N_IMAGES), (FINGERPRINT, 64, N_IMAGES), (FINGERPRINT, (SIZE, 48), N_IMAGES),
     (FINGERPRINT, SIZE, N_IMAGES + 1)],
    ids=["fingerprint", "resolution", "aspect", "count"],
)
def test_cache_misses_when_a_key_part_differs(project_fid, fresh_metric, fingerprint, resolution, num_samples):
    _, cache_dir = project_fid
    fresh_metric.cache_dir = cache_dir
    assert fresh_metric.use_real_cache(fingerprint, resolution, num_samples) is False
    assert fresh_metric.use_real_cache(FINGERPRINT, SIZE, N_IMAGES) is True  # the same metric hits the right key


def test_cache_misses_for_another_extractor(project_fid, tmp_path):
    _, cache_dir = project_fid
    other = write_random_inception_weights(tmp_path / "seed1.pth", seed=1)
    metric = FID(weights_path=other, cache_dir=cache_dir)
    assert metric.use_real_cache(FINGERPRINT, SIZE, N_IMAGES) is False


def test_cache_hit_puts_the_real_sums_on_rank_zero_only(project_fid, inception_weights, monkeypatch):
    """A sum reduction over ranks would count loaded statistics once per rank; only rank 0 may hold them."""
    _, cache_dir = project_fid
    monkeypatch.setattr(fid_cache_module, "global_rank", lambda: 1)
    metric = FID(weights_path=inception_weights, cache_dir=cache_dir)
    assert metric.use_real_cache(FINGERPRINT, SIZE, N_IMAGES) is True
    assert int(metric.real_features_num_samples) == 0
    assert not metric.real_features_sum.any() and not metric.real_features_cov_sum.any()


def test_cache_is_not_written_when_the_data_disagree_with_the_key(inception_weights, tmp_path):
    metric = FID(weights_path=inception_weights, cache_dir=tmp_path)
    metric.use_real_cache(FINGERPRINT, SIZE, num_samples=3)
    metric.update(torch.rand(2, 3, SIZE, SIZE), real=True)
    metric.update(torch.rand(2, 3, SIZE, SIZE), real=False)
    with pytest.warns(UserWarning, match="not caching FID real statistics: the key says 3 images"):
        metric.compute()
    assert list(tmp_path.iterdir()) == []


def test_corrupt_cache_file_is_ignored_with_a_warning(fresh_metric):
    assert fresh_metric.use_real_cache("corrupt", SIZE, N_IMAGES) is False
    fresh_metric.real_cache_path().parent.mkdir(parents=True)
    fresh_metric.real_cache_path().write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="ignoring unreadable FID cache file"):
        assert fresh_metric.use_real_cache("corrupt", SIZE, N_IMAGES) is False


def test_default_cache_dir_follows_xdg_cache_home(inception_weights, tmp_path):
    metric = FID(weights_path=inception_weights)
    metric.use_real_cache(FINGERPRINT, SIZE, N_IMAGES)
    assert metric.real_cache_path().parent == tmp_path / "xdg_cache" / "lightning_checkerboard" / "fid"


# --------------------------------------------------------------------------------- (c) policy


def test_auto_without_weights_warns_once_and_reports_nan():
    with pytest.warns(FIDUnavailableWarning, match="download .* failed: network unreachable") as record:
        first = FID(policy="auto")
        second = FID(policy="auto")
    assert len(record) == 1
    for metric in (first, second):
        assert not metric.available and metric.extractor is None
        assert "download" in metric.unavailable_reason
        metric.update(torch.rand(2, 3, SIZE, SIZE), real=True)
        assert math.isnan(metric.compute().item())
    assert first.result_info()["fid_unavailable_reason"] == first.unavailable_reason


def test_offline_env_var_skips_the_download(monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV_VAR, "1")

    def must_not_download(url, dst, timeout=0.0):
        raise AssertionError("download attempted although offline")

    monkeypatch.setattr(inception_module, "_download", must_not_download)
    with pytest.warns(FIDUnavailableWarning, match=f"{OFFLINE_ENV_VAR} forbids downloading"):
        metric = FID()
    assert not metric.available


def test_required_without_weights_raises():
    with pytest.raises(RuntimeError, match=r"policy='required', but no Inception weights at .*download"):
        FID(policy="required")


def test_off_is_inert(monkeypatch):
    monkeypatch.setattr(fid_module, "inception_weights_status", lambda *a, **k: pytest.fail("weights looked up"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metric = FID(policy="off")
        metric.update(torch.rand(2, 3, SIZE, SIZE), real=False)
        assert math.isnan(metric.compute().item())
    assert not metric.available and "policy='off'" in metric.unavailable_reason
    assert metric.use_real_cache(FINGERPRINT, SIZE, N_IMAGES) is False


def test_weights_are_found_in_torch_home_checkpoints(inception_weights, tmp_path):
    cached = tmp_path / "torch_home" / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILENAME
    cached.parent.mkdir(parents=True)
    os.symlink(inception_weights, cached)
    assert resolve_inception_weights(download=False) == cached
    assert FID(policy="required").weights_path == cached


def test_download_lands_in_torch_home_checkpoints(inception_weights, tmp_path, monkeypatch):
    monkeypatch.setattr(inception_module, "_download", lambda url, dst, timeout=0.0: shutil.copy(inception_weights, dst))
    weights, message = inception_weights_status()
    assert weights == tmp_path / "torch_home" / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILENAME
    assert message.startswith("downloaded to")


def test_explicit_path_wins_and_a_missing_one_raises(inception_weights, tmp_path):
    assert resolve_inception_weights(inception_weights) == inception_weights
    with pytest.raises(FileNotFoundError, match=r"^weights_path must be an existing .*; got '.*missing.pth'\.$"):
        FID(weights_path=tmp_path / "missing.pth")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"policy": "sometimes"}, ValueError, r"^policy must be one of 'auto', 'required', 'off'; got 'sometimes'\.$"),
        ({"policy": "off", "download": "yes"}, TypeError, r"^download must be a bool; got 'yes'\.$"),
        ({"policy": "off", "reset_real_features": 1}, TypeError, r"^reset_real_features must be a bool; got 1\.$"),
    ],
)
def test_bad_constructor_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        FID(**kwargs)


# ------------------------------------------------------------------------------ (d) bad input


@pytest.mark.parametrize(
    ("images", "error", "match"),
    [
        (torch.rand(3, SIZE, SIZE), ValueError, r"shape \(B, C, H, W\), but got shape \(3, 32, 32\)"),
        (torch.rand(2, 2, SIZE, SIZE), ValueError, r"1 or 3 channels, but got shape \(2, 2, 32, 32\)"),
        (torch.full((1, 3, SIZE, SIZE), float("nan")), ValueError, "must be finite"),
        (torch.full((1, 3, SIZE, SIZE), 1.5), ValueError, r"must lie in \[0, 1\], but got values in \[1.5, 1.5\]"),
        (-torch.rand(1, 3, SIZE, SIZE), ValueError, r"must lie in \[0, 1\]"),
        (torch.zeros(1, 3, SIZE, SIZE, dtype=torch.int64), TypeError, "float in .* or uint8 .* got dtype torch.int64"),
        ([[0.5]], TypeError, "must be a torch.Tensor .* but got list"),
    ],
    ids=["rank3", "two-channels", "nan", "above-one", "negative", "int64", "list"],
)
def test_bad_images_raise(small_metric, images, error, match):
    with pytest.raises(error, match=match):
        small_metric.update(images, real=True)


def test_real_flag_must_be_a_bool(small_metric):
    with pytest.raises(TypeError, match=r"^real must be a bool; got tensor\(True\)\.$"):
        small_metric.update(torch.rand(1, 3, SIZE, SIZE), real=torch.tensor(True))


def test_compute_needs_two_images_per_side(inception_weights, tmp_path):
    metric = FID(weights_path=inception_weights, cache_dir=tmp_path)
    metric.update(torch.rand(1, 3, SIZE, SIZE), real=True)
    metric.update(torch.rand(2, 3, SIZE, SIZE), real=False)
    with pytest.raises(RuntimeError, match="at least 2 real and 2 generated images, but got 1 real and 2 generated"):
        metric.compute()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("", SIZE, N_IMAGES), r"^fingerprint must be a non-empty string; got ''\.$"),
        ((FINGERPRINT, 0, N_IMAGES), r"^resolution must be a positive integer or a pair \(H, W\) of them; got 0\.$"),
        ((FINGERPRINT, (SIZE, SIZE, 3), N_IMAGES), r"^resolution .*; got \(32, 32, 3\)\.$"),
        ((FINGERPRINT, "32", N_IMAGES), r"^resolution .*; got '32'\.$"),
        ((FINGERPRINT, SIZE, 1), r"^num_samples must be an integer >= 2; got 1\.$"),
    ],
)
def test_bad_cache_keys_raise(small_metric, args, match):
    with pytest.raises(ValueError, match=match):
        small_metric.use_real_cache(*args)


# ------------------------------------------------------------------------------------ (e) DDP


def _ddp_worker(rank: int, world: int, init_file: str, weights: str, cache_dir: str, out_dir: str) -> None:
    torch.set_num_threads(1)  # two processes share two cores
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        real, fake = _make_images(N_IMAGES, 0.0, seed=1), _make_images(N_IMAGES, 60.0, seed=2)
        half = slice(rank * N_IMAGES // world, (rank + 1) * N_IMAGES // world)
        results = []
        # Pass 1 misses the cache, syncs the sums and (rank 0) writes the cache; pass 2 loads it.
        for _ in range(2):
            metric = FID(weights_path=weights, cache_dir=cache_dir)
            hit = metric.use_real_cache("ddp-" + FINGERPRINT, SIZE, N_IMAGES)
            if not hit:
                metric.update(real[half], real=True)
            metric.update(fake[half], real=False)
            results.append((hit, metric.compute().item()))
            dist.barrier()  # pass 2 must see the file that rank 0 wrote
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two interpreters, 12 Inception passes, 4 FID solves
def test_two_processes_on_halves_equal_one_process_on_all(project_fid, inception_weights, tmp_path):
    single, _ = project_fid
    cache_dir = tmp_path / "ddp_cache"
    mp.spawn(
        _ddp_worker,
        args=(2, str(tmp_path / "init"), str(inception_weights), str(cache_dir), str(tmp_path)),
        nprocs=2,
        join=True,
    )
    for rank in range(2):
        (miss, first), (hit, second) = torch.load(tmp_path / f"rank{rank}.pt")
        assert (miss, hit) == (False, True)
        assert first == pytest.approx(single, rel=1e-5)
        # Only rank 0 holds the loaded sums; if every rank did, the sum reduction would count them twice.
        assert second == pytest.approx(single, rel=1e-5)
