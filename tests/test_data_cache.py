"""The data cache of decoded folder and Hub images, parallel decoding, and streaming without the cache."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image

from lightning_checkerboard.data import DatasetError, ImageDataModule
from lightning_checkerboard.data import decode as decode_module
from lightning_checkerboard.data import decoded as decoded_module
from lightning_checkerboard.data.folder import folder_images
from lightning_checkerboard.data.rows import LazyRows, MappedRows, TensorRows


def _write_images(folder: Path, count: int, seed: int = 0, size=(14, 10)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"img{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _module(folder: Path, cache: Path, **overrides) -> ImageDataModule:
    settings = {"image_size": 8, "batch_size": 4, "heldout_samples": 6, "cache_dir": cache, **overrides}
    return ImageDataModule(f"folder:{folder}", **settings)


def _train_images(dm: ImageDataModule) -> torch.Tensor:
    train = dm._data.train
    return train.__getitems__(list(range(len(train))))


def _count_decodes(monkeypatch) -> list[int]:
    # Counts decodes in this process: use with decode_workers=1 (a worker process counts its own).
    calls = []
    original = decode_module.decode_chunk

    def counting(chunk, image_size):
        calls.append(len(chunk.labels))
        return original(chunk, image_size)

    monkeypatch.setattr(decode_module, "decode_chunk", counting)
    return calls


def _refuse_decoding(monkeypatch) -> None:
    def refuse(chunk, image_size):
        raise AssertionError("decoded although the cache holds these images")

    monkeypatch.setattr(decode_module, "decode_chunk", refuse)


def _entries(cache: Path) -> tuple[Path, Path]:
    (manifest,) = cache.glob("folder-*.json")
    (data,) = cache.glob("folder-*.npy")
    return manifest, data


@pytest.fixture
def folder(tmp_path) -> Path:
    _write_images(tmp_path / "imgs", 30)
    return tmp_path / "imgs"


def test_second_setup_reads_the_cache_without_decoding(folder, tmp_path, monkeypatch, capsys):
    first = _module(folder, tmp_path / "cache")
    first.setup()
    assert "30 images in" in capsys.readouterr().err  # one summary line, stderr not being a terminal
    manifest, data = _entries(tmp_path / "cache")
    assert json.loads(manifest.read_text())["bytes"] == data.stat().st_size
    assert np.load(data, mmap_mode="r").shape == (30, 3, 8, 8)
    assert isinstance(first._data.train, MappedRows)

    _refuse_decoding(monkeypatch)
    again = _module(folder, tmp_path / "cache")
    again.setup()
    assert f"{data.name} 0.0 MB reused" in capsys.readouterr().err  # where, how large, and that it was reused
    assert torch.equal(_train_images(again), _train_images(first))
    assert torch.equal(again.heldout_images(), first.heldout_images())
    assert again.fingerprint == first.fingerprint
    # the map serves the same pixels a fresh in-memory decode gives
    fresh = _module(folder, tmp_path / "unused", data_cache=False)
    monkeypatch.undo()
    fresh.setup()
    assert isinstance(fresh._data.train, TensorRows) and not (tmp_path / "unused").exists()
    assert torch.equal(_train_images(fresh), _train_images(first))
    assert torch.equal(fresh.heldout_images(), first.heldout_images())


@pytest.mark.parametrize("change", ["mtime", "content"])
def test_a_changed_file_rebuilds_the_cache(folder, tmp_path, monkeypatch, change):
    before = _module(folder, tmp_path / "cache")
    before.setup()
    _, old_data = _entries(tmp_path / "cache")
    target = sorted(folder.glob("*.png"))[0]
    if change == "mtime":
        stat = target.stat()
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    else:
        Image.new("RGB", (14, 10), (255, 0, 0)).save(target)
    calls = _count_decodes(monkeypatch)
    after = _module(folder, tmp_path / "cache", decode_workers=1)
    after.setup()
    assert sum(calls) == 30  # every image decoded again
    _, new_data = _entries(tmp_path / "cache")  # the old version is gone
    assert new_data != old_data and not old_data.exists()
    red = torch.tensor([255, 0, 0], dtype=torch.uint8).view(3, 1, 1).expand(3, 8, 8)
    images = torch.cat([_train_images(after), (after.heldout_images() * 255).round().to(torch.uint8)])
    assert any(torch.equal(image, red) for image in images) == (change == "content")


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest"])
def test_a_corrupt_cache_is_rebuilt_with_a_warning(folder, tmp_path, damage):
    first = _module(folder, tmp_path / "cache")
    first.setup()
    expected = _train_images(first), first.heldout_images()  # before the damage reaches first's map
    manifest, data = _entries(tmp_path / "cache")
    if damage == "truncate":
        with open(data, "r+b") as handle:
            handle.truncate(data.stat().st_size - 100)
    elif damage == "flip":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data.write_bytes(bytes(raw))
    else:
        manifest.write_text("{ not json")
    again = _module(folder, tmp_path / "cache")
    with pytest.warns(UserWarning, match=r"data cache .*\.json is corrupt \(.*\); rebuilding it"):
        again.setup()
    assert torch.equal(_train_images(again), expected[0]) and torch.equal(again.heldout_images(), expected[1])


def test_skipped_images_are_remembered_by_the_cache(folder, tmp_path, monkeypatch):
    (folder / "broken.png").write_bytes(b"\x89PNG not an image")
    first = _module(folder, tmp_path / "cache")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\) \(.*broken\.png"):
        first.setup()
    _refuse_decoding(monkeypatch)
    again = _module(folder, tmp_path / "cache")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\)"):
        again.setup()
    assert again.describe()["skipped_corrupt"] == 1
    assert again.describe()["train_samples"] + again.describe()["heldout_samples"] == 30
    with pytest.raises(DatasetError, match=r"cannot read image .*broken\.png \(not a picture that can be read "
                                           r"\(cannot identify image file\)\)"):
        _module(folder, tmp_path / "cache", corrupt="error").setup()


def test_an_error_while_building_leaves_no_cache_behind(folder, tmp_path):
    (folder / "broken.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=r"cannot read image .*broken\.png"):
        _module(folder, tmp_path / "cache", corrupt="error").setup()
    assert not list((tmp_path / "cache").glob("*.npy")) and not list((tmp_path / "cache").glob("*.tmp"))


@pytest.mark.parametrize(("pool", "target"), [("process", "array"), ("process", "map"), ("thread", "array")])
def test_parallel_decoding_equals_decoding_in_one_thread(folder, tmp_path, pool, target):
    source = folder_images(folder, "folder:test")
    indices = np.arange(len(source))[::-1].copy()  # any order: rows follow ``indices``
    one = np.zeros((30, 3, 8, 8), dtype=np.uint8)
    many = np.zeros_like(one) if target == "array" else np.lib.format.open_memmap(
        tmp_path / "out.npy", mode="w+", dtype=np.uint8, shape=one.shape)  # the workers write into the map
    assert decode_module.decode_into(source, indices, 8, one, workers=1) == (True, [])
    assert decode_module.decode_into(source, indices, 8, many, workers=2, pool=pool) == (True, [])
    assert np.array_equal(one, many) and one.any()


def _streaming_batches(dm: ImageDataModule, start: int, count: int, rank: int = 0, world: int = 1) -> list:
    # a GAN takes two optimiser steps per batch; the loader starts at the iteration, not the step
    dm.trainer = SimpleNamespace(global_rank=rank, local_rank=rank, world_size=world, global_step=2 * start,
                                 lightning_module=SimpleNamespace(optimizer_steps_per_iteration=2))
    loader = iter(dm.train_dataloader())
    return [next(loader) for _ in range(count)]


def test_streaming_batches_are_a_function_of_the_iteration(folder, tmp_path):
    streamed = _module(folder, tmp_path / "cache", data_cache=False, streaming=True, seed=4)
    streamed.setup()
    assert isinstance(streamed._data.train, LazyRows) and not (tmp_path / "cache").exists()
    straight = _streaming_batches(streamed, 0, 12)  # 24 training images, 6 batches an epoch: two epochs
    resumed = _module(folder, tmp_path / "cache", data_cache=False, streaming=True, seed=4)
    resumed.setup()
    assert all(torch.equal(a, b) for a, b in zip(straight[7:], _streaming_batches(resumed, 7, 5)))
    assert not torch.equal(straight[0], straight[6])  # a new epoch reshuffles
    cached = _module(folder, tmp_path / "cache", seed=4)
    cached.setup()
    assert all(torch.equal(a, b) for a, b in zip(straight, _streaming_batches(cached, 0, 12)))
    # two ranks split each step's images
    first, second = (torch.cat(_streaming_batches(streamed, 0, 3, rank, 2)) for rank in (0, 1))
    assert not any(torch.equal(a, b) for a in first for b in second)


def test_streaming_keeps_the_held_out_images_fixed_and_apart(folder, tmp_path, monkeypatch):
    in_memory = _module(folder, tmp_path / "cache", data_cache=False)
    in_memory.setup()
    monkeypatch.setattr(decoded_module, "MEMORY_FRACTION", 1e-12)  # any dataset is too large now
    streamed = _module(folder, tmp_path / "cache", data_cache=False)
    streamed.setup()
    assert isinstance(streamed._data.train, LazyRows)
    assert torch.equal(streamed.heldout_images(), in_memory.heldout_images())
    held = {image.numpy().tobytes() for image in (streamed.heldout_images() * 255).round().to(torch.uint8)}
    train = {image.numpy().tobytes() for image in _train_images(streamed)}
    assert len(held) == 6 and len(train) == 24 and not held & train


def test_streaming_serves_the_next_readable_image_for_an_unreadable_one(folder, tmp_path):
    (folder / "img005.png").write_bytes(b"garbage")
    dm = _module(folder, tmp_path / "cache", data_cache=False, streaming=True, heldout_samples=1, split_seed=1)
    dm.setup()
    labels = [Path(p).name for p in dm._data.train.source.chunk(dm._data.train.indices).labels]
    position = labels.index("img005.png")
    with pytest.warns(UserWarning, match=r"cannot read image .*img005\.png .*serving the next readable image"):
        images = _train_images(dm)
    assert torch.equal(images[position], images[position + 1])
    strict = _module(folder, tmp_path / "cache", data_cache=False, streaming=True, heldout_samples=1,
                     split_seed=1, corrupt="error")
    strict.setup()
    with pytest.raises(DatasetError, match=r"cannot read image .*img005\.png"):
        _train_images(strict)


def test_loader_workers_map_the_cache_themselves(folder, tmp_path):
    dm = _module(folder, tmp_path / "cache", num_workers=1)
    dm.setup()
    in_process = _module(folder, tmp_path / "cache").train_dataloader()
    assert torch.equal(next(iter(dm.train_dataloader())), next(iter(in_process)))


def test_hub_splits_are_cached_and_follow_the_dataset(monkeypatch, tmp_path):
    import datasets
    from datasets import Dataset, DatasetDict, Features, Value
    from datasets import Image as ImageFeature

    from lightning_checkerboard.data import hub

    def fake(seed: int) -> DatasetDict:
        rng = np.random.default_rng(seed)
        features = Features({"label": Value("int64"), "picture": ImageFeature()})

        def split(count):
            images = [Image.fromarray(rng.integers(0, 256, (10, 14), dtype=np.uint8), "L") for _ in range(count)]
            return Dataset.from_dict({"label": list(range(count)), "picture": images}, features=features)

        return DatasetDict({"train": split(20), "test": split(8)})

    current = {"data": fake(0)}
    monkeypatch.setattr(hub, "hub_is_cached", lambda spec: True)
    monkeypatch.setattr(datasets, "load_dataset", lambda repo, **kw: current["data"])
    settings = {"image_size": 8, "batch_size": 4, "heldout_samples": 5, "cache_dir": tmp_path}
    first = ImageDataModule("hf:someone/greys", **settings)
    first.setup()
    assert sorted(p.name.split("-")[3] for p in tmp_path.glob("hf-*.npy")) == ["test", "train"]
    assert first.channels == 1
    with monkeypatch.context() as patch:
        _refuse_decoding(patch)
        again = ImageDataModule("hf:someone/greys", **settings)
        again.setup()
    assert torch.equal(_train_images(again), _train_images(first))
    assert torch.equal(again.heldout_images(), first.heldout_images())
    current["data"] = fake(1)  # a new revision of the dataset
    changed = ImageDataModule("hf:someone/greys", **settings)
    changed.setup()
    assert not torch.equal(changed.heldout_images(), first.heldout_images())


def _ddp_worker(rank: int, world: int, init_file: str, folder: str, cache_dir: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        calls = []
        original = decode_module.decode_chunk
        decode_module.decode_chunk = lambda chunk, size: calls.append(1) or original(chunk, size)
        if rank == 0:
            dist.barrier()  # rank 1 is already waiting for the cache when rank 0 starts building it
        dm = ImageDataModule(f"folder:{folder}", image_size=8, batch_size=4, heldout_samples=6, cache_dir=cache_dir,
                             decode_workers=1)
        if rank == 1:
            dist.barrier()
        dm.setup()
        torch.save({"decoded": len(calls), "train": _train_images(dm), "heldout": dm.heldout_images()},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_processes_share_one_cache_that_rank_zero_builds(folder, tmp_path):
    mp.start_processes(_ddp_worker, args=(2, str(tmp_path / "init"), str(folder), str(tmp_path / "cache"),
                                          str(tmp_path)), nprocs=2, join=True, start_method="fork")
    zero, one = (torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1))
    assert zero["decoded"] > 0 and one["decoded"] == 0
    assert torch.equal(zero["train"], one["train"]) and torch.equal(zero["heldout"], one["heldout"])
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1


def test_an_unwritable_cache_folder_is_a_one_line_error(folder, tmp_path):
    (tmp_path / "not-a-folder").write_text("")
    with pytest.raises(DatasetError, match=r"cannot write the data cache in .*not-a-folder .*data_cache=False"):
        _module(folder, tmp_path / "not-a-folder").setup()


def test_a_waiting_rank_gives_up_with_a_clear_error_when_nobody_builds(folder, tmp_path):
    from lightning_checkerboard.data.cache import ensure_cached

    with pytest.raises(DatasetError, match=r"waited 0 s for local rank 0 to build the data cache .* data_cache=False"):
        ensure_cached(tmp_path, dataset="folder:x", split="all", image_size=8, fingerprint="f", count=3,
                      fill=lambda out: (True, []), local_rank=1, timeout=0.3)


def test_a_waiting_rank_stops_at_once_with_rank_zeros_reason_when_its_build_fails(tmp_path):
    import threading
    import time

    from lightning_checkerboard.data.cache import ensure_cached

    settings = {"dataset": "folder:x", "split": "all", "image_size": 8, "fingerprint": "f", "count": 3}
    waited: dict[str, object] = {}

    def wait() -> None:
        began = time.monotonic()
        try:
            ensure_cached(tmp_path, **settings, fill=lambda out: (True, []), local_rank=1, timeout=60)
        except DatasetError as err:
            waited["error"], waited["seconds"] = str(err), time.monotonic() - began

    def fail(out):
        raise OSError("disk full")

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    with pytest.raises(DatasetError, match="disk full"):
        ensure_cached(tmp_path, **settings, fill=fail, local_rank=0)
    waiter.join(timeout=30)
    assert not waiter.is_alive()
    assert "could not build the data cache" in waited["error"] and "disk full" in waited["error"]
    assert waited["seconds"] < 30  # not the 60 s timeout


def test_the_photos_crops_report_their_cache_entry_as_the_other_datasets_do(tmp_path, capsys):
    """Every dataset that is cached says which entry a run uses: ``photos`` too (a datasets folder)."""
    settings = dict(image_size=16, train_samples=8, heldout_samples=4, cache_dir=tmp_path / "cache")
    ImageDataModule("photos", **settings).prepare_data()
    built = capsys.readouterr().err.strip()
    ImageDataModule("photos", **settings).prepare_data()
    reused = capsys.readouterr().err.strip()
    (entry,) = (tmp_path / "cache").glob("photos-v*-16px-*")
    assert built.startswith(f"Data cache of 'photos' in {entry.parent}: {entry.name}/ (a datasets folder) ")
    assert built.endswith(" MB built") and reused == built.replace(" MB built", " MB reused")
