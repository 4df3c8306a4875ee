"""KID and precision/recall next to FID: equality with torch-fidelity, order independence, cache, policy.

Offline and on CPU like test_fid.py: the Inception weights are a seeded, kaiming-initialised random
state dict, so features stay distinct. Inception runs on 8 + 8 photo crops once for our side and once
inside torch-fidelity; every other test injects features into the metric's states directly. The DDP test
(two gloo processes, uneven shares, a cache hit on rank 0 only) is marked slow.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch_fidelity
from torch_fidelity.metric_kid import kid_features_to_metric
from torchmetrics.utilities.data import dim_zero_cat

from lightning_checkerboard.data.photos import build_photo_crops
from lightning_checkerboard.metrics import _fid_cache as fid_cache_module
from lightning_checkerboard.metrics import fid as fid_module
from lightning_checkerboard.metrics._kid_prc import canonical_order
from lightning_checkerboard.metrics.fid import FID, FID_DIAGNOSTICS
from test_fid import _offline_isolated  # noqa: F401  (autouse: offline, isolated caches)
from test_fid import _UInt8Images

N_IMAGES = 8
SIZE = 32
FINGERPRINT = "kid-prc-test-v1"



@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (real, generated): training photo crops, and held-out crops with added noise."""
    crops = build_photo_crops(image_size=SIZE, train_samples=N_IMAGES, heldout_samples=N_IMAGES, seed=0, split_seed=0)
    noise = torch.randn(N_IMAGES, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 40
    fake = (crops["heldout"].images.float() + noise).clamp(0, 255).round().to(torch.uint8)
    return crops["train"].images, fake


@pytest.fixture(scope="module")
def measured(images, inception_weights, tmp_path_factory) -> tuple[FID, dict[str, float]]:
    """Our metric on the images (real statistics cached under a key), and its diagnostics."""
    real, fake = images
    metric = FID(weights_path=inception_weights, cache_dir=tmp_path_factory.mktemp("fid_cache"))
    metric.use_real_cache(FINGERPRINT, SIZE, N_IMAGES)
    metric.update(real[:3], real=True)
    metric.update(real[3:].float() / 255, real=True)
    metric.update(fake, real=False)
    return metric, {key: float(value) for key, value in metric.diagnostics().items()}


@pytest.fixture(scope="module")
def torch_fidelity_metrics(images, inception_weights) -> dict[str, float]:
    real, fake = images
    return torch_fidelity.calculate_metrics(
        input1=_UInt8Images(fake),  # torch-fidelity's convention: input 1 generated, input 2 real
        input2=_UInt8Images(real),
        fid=True,
        kid=True,
        prc=True,
        feature_extractor="inception-v3-compat",  # precision/recall default to VGG-16 otherwise
        kid_subset_size=N_IMAGES,
        cuda=False,
        feature_extractor_weights_path=str(inception_weights),
        cache=False,
        save_cpu_ram=True,
        verbose=False,
        batch_size=N_IMAGES,
    )


@pytest.fixture(scope="module")
def blank_metrics(inception_weights, tmp_path_factory) -> tuple[FID, FID]:
    cache = tmp_path_factory.mktemp("unused_cache")
    return tuple(FID(weights_path=inception_weights, cache_dir=cache, reset_real_features=True) for _ in range(2))


@pytest.fixture
def blank(blank_metrics, monkeypatch) -> tuple[FID, FID]:
    """Two metrics with empty states and small KID subsets, for tests that inject features.

    FID itself (two 2048² eigensolvers per call, held to torch-fidelity in test_fid.py and above) is
    replaced by a cheap function of the same summed states, so these tests check KID and
    precision/recall and the plumbing around them in a fraction of the time.
    """
    monkeypatch.setattr(
        FID,
        "_fid",
        lambda self: (
            self.real_features_sum / self.real_features_num_samples
            - self.fake_features_sum / self.fake_features_num_samples
        ).norm().float(),
    )
    for metric in blank_metrics:
        metric.reset()
        metric.kid_subsets, metric.kid_subset_size = 20, 5
    return blank_metrics


def _inject(metric: FID, kind: str, features: torch.Tensor) -> None:
    """What ``update`` does after the extractor, for ready-made features."""
    features = features.float()
    wide = features.double()
    setattr(metric, f"{kind}_features_sum", getattr(metric, f"{kind}_features_sum") + wide.sum(0))
    setattr(metric, f"{kind}_features_cov_sum", getattr(metric, f"{kind}_features_cov_sum") + wide.T @ wide)
    setattr(metric, f"{kind}_features_num_samples", getattr(metric, f"{kind}_features_num_samples") + len(features))
    getattr(metric, f"{kind}_features").append(features)


def _features(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.rand(n, 2048, generator=torch.Generator().manual_seed(seed)) + shift


# ------------------------------------------------------------------------------------ correctness


def test_diagnostics_equal_torch_fidelity_calculate_metrics(measured, torch_fidelity_metrics):
    metric, ours = measured
    theirs = torch_fidelity_metrics
    assert theirs["frechet_inception_distance"] > 1.0, "features collapsed: the random weights would hide errors"
    assert 0.0 < theirs["precision"] < 1.0 or 0.0 < theirs["recall"] < 1.0, "a degenerate case would hide errors"
    assert ours["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-3)
    assert ours["kid"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-4, abs=1e-6)
    assert ours["kid_std"] == pytest.approx(theirs["kernel_inception_distance_std"], abs=1e-6)
    assert ours["precision"] == pytest.approx(theirs["precision"], abs=1e-6)
    assert ours["recall"] == pytest.approx(theirs["recall"], abs=1e-6)
    assert ours["fid"] == pytest.approx(float(metric.compute()), rel=1e-6)


def test_kid_with_smaller_subsets_is_torch_fidelity_on_the_canonically_ordered_features(measured):
    metric, _ = measured
    metric.kid_subset_size, metric.kid_subsets = 5, 30
    try:
        ours = metric.diagnostics()
    finally:
        metric.kid_subset_size, metric.kid_subsets = 1000, 100
    real = canonical_order(dim_zero_cat(metric.real_features))
    fake = canonical_order(dim_zero_cat(metric.fake_features))
    theirs = kid_features_to_metric(fake, real, kid_subset_size=5, kid_subsets=30, verbose=False)
    assert float(ours["kid"]) == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-6)
    assert float(ours["kid_std"]) == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-5)
    assert float(ours["kid_std"]) > 0  # subsets of 5 out of 8 differ


def test_same_features_read_full_precision_and_recall_and_distant_ones_none(blank):
    metric, _ = blank
    _inject(metric, "real", _features(12, seed=0))
    _inject(metric, "fake", _features(12, seed=0))
    same = metric.diagnostics()
    assert float(same["precision"]) == 1.0 and float(same["recall"]) == 1.0
    metric.reset()
    _inject(metric, "real", _features(12, seed=0))
    _inject(metric, "fake", _features(12, seed=1, shift=5.0))
    apart = metric.diagnostics()
    assert float(apart["precision"]) == 0.0 and float(apart["recall"]) == 0.0
    assert float(apart["kid"]) > 100 * abs(float(same["kid"]))


def test_kid_does_not_depend_on_order_or_batching(blank):
    metric, _ = blank
    real, fake = _features(12, seed=0), _features(10, seed=1, shift=0.05)
    _inject(metric, "real", real)
    _inject(metric, "fake", fake)
    reference = metric.diagnostics()
    metric.reset()
    order = torch.randperm(12, generator=torch.Generator().manual_seed(3))
    for part in real[order].split([5, 7]):
        _inject(metric, "real", part)
    for part in fake.flip(0).split([1, 9]):
        _inject(metric, "fake", part)
    shuffled = metric.diagnostics()
    for key in FID_DIAGNOSTICS:
        assert float(shuffled[key]) == pytest.approx(float(reference[key]), rel=1e-5), key
    # Without the canonical order, the subsets (and KID) would follow the input order.
    unordered = kid_features_to_metric(fake.flip(0), real[order], kid_subset_size=5, kid_subsets=20, verbose=False)
    assert unordered["kernel_inception_distance_mean"] != pytest.approx(float(reference["kid"]), rel=1e-3)


def test_merged_states_of_two_metrics_equal_one_metric(blank):
    first, second = blank
    real, fake = _features(12, seed=0), _features(12, seed=1, shift=0.05)
    _inject(first, "real", real)
    _inject(first, "fake", fake)
    expected = first.diagnostics()
    first.reset()
    _inject(first, "real", real[:4])
    _inject(first, "fake", fake[:9])
    _inject(second, "real", real[4:])
    _inject(second, "fake", fake[9:])
    first.merge_state(second)
    merged = first.diagnostics()
    for key in FID_DIAGNOSTICS:
        assert float(merged[key]) == pytest.approx(float(expected[key]), rel=1e-5), key


def test_feature_states_reduce_by_concatenation_and_reset_keeps_the_real_ones(inception_weights, tmp_path):
    metric = FID(weights_path=inception_weights, cache_dir=tmp_path)
    assert metric._reductions["real_features"] is dim_zero_cat and metric._reductions["fake_features"] is dim_zero_cat
    _inject(metric, "real", _features(4, seed=0))
    _inject(metric, "fake", _features(4, seed=1))
    metric.reset()
    assert len(metric.real_features) == 1 and tuple(metric.real_features[0].shape) == (4, 2048)
    assert metric.fake_features == []


# -------------------------------------------------------------------------------------- the cache


def test_cache_holds_the_real_features_and_a_cached_run_gives_the_same_diagnostics(
    measured, images, inception_weights
):
    metric, first = measured
    cached = torch.load(metric.real_cache_path(), weights_only=True)
    torch.testing.assert_close(cached["features"], dim_zero_cat(metric.real_features).cpu())
    again = FID(weights_path=inception_weights, cache_dir=metric.cache_dir)
    seen: list[int] = []
    again.inception.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    assert again.use_real_cache(FINGERPRINT, SIZE, N_IMAGES) is True
    again.update(images[0], real=True)  # skipped: the cache holds these
    again.update(images[1], real=False)
    second = {key: float(value) for key, value in again.diagnostics().items()}
    assert seen == [N_IMAGES]
    assert second == pytest.approx(first, rel=1e-6, abs=1e-9)


def test_cache_hit_on_another_rank_holds_an_empty_feature_block(measured, inception_weights, monkeypatch):
    """Ranks gather tensors of one shape; a rank without the cached features holds a (0, 2048) block."""
    metric, _ = measured
    monkeypatch.setattr(fid_cache_module, "global_rank", lambda: 1)
    other = FID(weights_path=inception_weights, cache_dir=metric.cache_dir)
    assert other.use_real_cache(FINGERPRINT, SIZE, N_IMAGES) is True
    assert [tuple(t.shape) for t in other.real_features] == [(0, 2048)]


def test_a_metric_without_features_does_not_read_a_cache_with_them_and_has_no_diagnostics(
    measured, inception_weights
):
    metric, _ = measured
    sums_only = FID(weights_path=inception_weights, cache_dir=metric.cache_dir, keep_features=False)
    assert not hasattr(sums_only, "real_features")
    assert sums_only.use_real_cache(FINGERPRINT, SIZE, N_IMAGES) is False  # the key records the features
    with pytest.raises(RuntimeError, match="need the features: build FID with keep_features=True"):
        sums_only.diagnostics()


# --------------------------------------------------------------------------- policy and bad input


def test_unavailable_metric_reports_nan_for_every_diagnostic():
    with pytest.warns(fid_module.FIDUnavailableWarning):
        metric = FID(policy="auto")
    assert tuple(metric.diagnostics()) == FID_DIAGNOSTICS
    assert all(math.isnan(float(value)) for value in metric.diagnostics().values())
    assert all(math.isnan(float(value)) for value in FID(policy="off").diagnostics().values())


def test_precision_recall_need_k_plus_one_images_per_set(blank):
    metric, _ = blank
    _inject(metric, "real", _features(3, seed=0))
    _inject(metric, "fake", _features(5, seed=1))
    with pytest.raises(RuntimeError, match="KID and precision/recall needs at least 4 real and 4 generated images, but"
                       " got 3 real and 5 generated"):
        metric.diagnostics()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kid_subsets": 0}, ValueError, r"^kid_subsets must be a positive integer; got 0\.$"),
        ({"kid_subset_size": 1}, ValueError, r"^kid_subset_size must be an integer >= 2; got 1\.$"),
        ({"prc_neighborhood": True}, ValueError, r"^prc_neighborhood must be a positive integer; got True\.$"),
        ({"kid_subsets": 10.0}, ValueError, r"^kid_subsets must be a positive integer; got 10\.0\.$"),
        ({"keep_features": "yes"}, TypeError, r"^keep_features must be a bool; got 'yes'\.$"),
    ],
)
def test_bad_options_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        FID(policy="off", **kwargs)


# ------------------------------------------------------------------------------------------- DDP


def _ddp_features() -> tuple[torch.Tensor, torch.Tensor]:
    return _features(12, seed=0), _features(14, seed=1, shift=0.05)


def _ddp_worker(rank: int, world: int, init_file: str, weights: str, cache_dir: str, out_dir: str) -> None:
    torch.set_num_threads(1)  # two processes share two cores
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        real, fake = _ddp_features()
        # Uneven shares, different per set.
        real_part, fake_part = (real[:5], fake[:9]) if rank == 0 else (real[5:], fake[9:])
        results = []
        # Pass 1 gathers the features and (rank 0) writes the cache; pass 2 loads it on rank 0 only.
        for _ in range(2):
            metric = FID(weights_path=weights, cache_dir=cache_dir, kid_subsets=20, kid_subset_size=5)
            hit = metric.use_real_cache("ddp-" + FINGERPRINT, SIZE, len(real))
            if not hit:
                _inject(metric, "real", real_part)
                metric._real_sizes.add((SIZE, SIZE))  # what update() records for the cache check
            _inject(metric, "fake", fake_part)
            results.append((hit, {key: float(value) for key, value in metric.diagnostics().items()}))
            dist.barrier()  # pass 2 must see the file that rank 0 wrote
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two interpreters, each loading Inception and solving FID twice
def test_two_processes_on_uneven_shares_equal_one_process(blank_metrics, inception_weights, tmp_path):
    single, _ = blank_metrics
    single.reset()
    single.kid_subsets, single.kid_subset_size = 20, 5
    real, fake = _ddp_features()
    _inject(single, "real", real)
    _inject(single, "fake", fake)
    expected = {key: float(value) for key, value in single.diagnostics().items()}
    mp.spawn(
        _ddp_worker,
        args=(2, str(tmp_path / "init"), str(inception_weights), str(tmp_path / "cache"), str(tmp_path)),
        nprocs=2,
        join=True,
    )
    for rank in range(2):
        (miss, first), (hit, second) = torch.load(tmp_path / f"rank{rank}.pt")
        assert (miss, hit) == (False, True)
        assert first == pytest.approx(expected, rel=1e-5)
        assert second == pytest.approx(expected, rel=1e-5)
