"""Metric states are sums: two gloo processes on halves give the one-process result exactly.

FID's DDP check lives in test_fid.py (slow: it runs Inception in both processes); this one covers
the checkerboard score, its diagnostics, the gradient score and the spectral distance, fast.
"""

from __future__ import annotations


import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lightning_checkerboard.metrics import CheckerboardScore, GradientCheckerboardScore, SpectralDistance


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    real = torch.nn.functional.avg_pool2d(torch.rand(16, 3, 34, 34, generator=g), 3, 1)
    checker = (-1.0) ** (torch.arange(32)[:, None] + torch.arange(32)[None, :])
    fake = (0.1 + 0.8 * real.flip(0) + 3 / 255 * checker * torch.rand(16, 1, 1, 1, generator=g)).clamp(0, 1)
    return real, fake


def _measure(real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    score, grad, distance = CheckerboardScore(levels=3), GradientCheckerboardScore(levels=3), SpectralDistance(num_bins=17)
    score.update(fake)
    grad.update(fake - real)
    distance.update(real, real=True)
    distance.update(fake, real=False)
    out = {f"score/{k}": float(v) for k, v in score.diagnostics().items()}
    out["gradient"] = float(grad.compute())
    out["spectral_distance"] = float(distance.compute())
    return out


def _worker(rank: int, world: int, init_file: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        real, fake = _data()
        # Uneven halves, so a mean-of-means reduction would show.
        cut = 6
        part = slice(0, cut) if rank == 0 else slice(cut, None)
        results[rank] = _measure(real[part], fake[part])
    finally:
        dist.destroy_process_group()


def test_two_processes_on_halves_equal_one_process_on_all(tmp_path):
    expected = _measure(*_data())
    assert expected["score/score"] > 1  # the pattern is there to be measured
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(2, str(tmp_path / "init"), results), nprocs=2, join=True)
        got = dict(results)
    for rank in (0, 1):
        assert got[rank].keys() == expected.keys()
        for key, value in expected.items():
            assert got[rank][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
