"""The data layer: bundled photos and digits, image folders, Hub names offline, and every error path."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_checkerboard.data import DatasetError, ImageDataModule, parse_dataset
from lightning_checkerboard.data import photos as photos_module
from lightning_checkerboard.data.images import convert_channels
from lightning_checkerboard.data.photos import PHOTO_NAMES, build_photo_crops, heldout_strip_rows

SMALL = {"image_size": 16, "train_samples": 48, "heldout_samples": 16, "batch_size": 8}


def _photos(tmp_path: Path, **overrides) -> ImageDataModule:
    dm = ImageDataModule("photos", cache_dir=tmp_path / "cache", **{**SMALL, **overrides})
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _write_pngs(folder: Path, count: int, size=(20, 12), mode="RGB") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"img{i:03d}.png")


def _train_images(dm: ImageDataModule) -> torch.Tensor:
    train = dm._data.train
    return train.__getitems__(list(range(len(train))))


def test_photos_batches_are_float_in_signed_unit_range(tmp_path):
    dm = _photos(tmp_path)
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (8, 3, 16, 16) and batch.dtype == torch.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0 and batch.std() > 0.05
    held = dm.heldout_images()
    assert held.shape == (16, 3, 16, 16) and held.min() >= 0.0 and held.max() <= 1.0
    assert dm.channels == 3 and dm.image_size == 16 and dm.name == "photos"
    assert dm.describe()["train_samples"] == 48 and dm.describe()["heldout_samples"] == 16


def test_photos_same_seed_same_data_and_different_seed_different(tmp_path):
    first, again, other = (_photos(tmp_path / str(i), seed=s) for i, s in ((0, 0), (1, 0), (2, 1)))
    assert torch.equal(next(iter(first.train_dataloader())), next(iter(again.train_dataloader())))
    assert not torch.equal(_train_images(first), _train_images(other))
    # The held-out images follow split_seed, not seed: every training seed is scored on the same images.
    assert torch.equal(first.heldout_images(), other.heldout_images())
    assert first.fingerprint == other.fingerprint


def test_photo_crops_come_from_disjoint_row_bands_of_each_photo():
    crops = build_photo_crops(image_size=64, train_samples=96, heldout_samples=48, seed=3, split_seed=5)
    heights = {name: h for name, h in zip(PHOTO_NAMES, (512, 300, 400, 427, 872, 512, 1411, 500))}
    for split, in_strip in (("train", False), ("heldout", True)):
        c = crops[split]
        assert set(c.photo) == set(PHOTO_NAMES)  # balanced over all photographs
        for name, top, box in zip(c.photo, c.top, c.box):
            boundary = heights[name] - heldout_strip_rows(heights[name], 64)
            if in_strip:
                assert boundary <= top and top + box <= heights[name]
            else:
                assert top + box <= boundary
            assert box >= 64  # never enlarged when the photo region is big enough


def test_large_crops_are_possible_from_small_photos():
    crops = build_photo_crops(image_size=256, train_samples=16, heldout_samples=16, seed=0, split_seed=0)
    assert crops["train"].images.shape == (16, 3, 256, 256)
    assert heldout_strip_rows(300, 256) == 150  # chelsea: half each, enlarged alike in both splits


def test_photos_cache_is_reused_without_rebuilding(tmp_path, monkeypatch):
    built = _photos(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("rebuilt although the cache exists")

    monkeypatch.setattr(photos_module, "build_photo_crops", refuse)
    loaded = _photos(tmp_path)
    assert torch.equal(_train_images(built), _train_images(loaded))
    assert torch.equal(built.heldout_images(), loaded.heldout_images())
    assert not list((tmp_path / "cache").glob(".*"))  # no staging directory left behind


def test_fingerprint_is_stable_and_changes_with_image_size(tmp_path):
    dm = _photos(tmp_path)
    assert dm.fingerprint == dm.fingerprint == _photos(tmp_path).fingerprint
    assert len(dm.fingerprint) == 16
    assert _photos(tmp_path, image_size=24).fingerprint != dm.fingerprint
    assert _photos(tmp_path, channels=1).fingerprint != dm.fingerprint


def test_digits_are_single_channel_and_convert_to_three(tmp_path):
    grey = ImageDataModule("digits", image_size=16, batch_size=32, heldout_samples=64, cache_dir=tmp_path)
    grey.setup("fit")
    assert next(iter(grey.train_dataloader())).shape == (32, 1, 16, 16)
    colour = ImageDataModule("digits", image_size=16, channels=3, heldout_samples=64, cache_dir=tmp_path)
    held = colour.heldout_images(8)
    assert held.shape == (8, 3, 16, 16)
    assert torch.equal(held[:, 0], held[:, 2])  # grey repeated
    assert grey.describe()["train_samples"] + 64 == 1797


def test_rgb_to_grey_uses_luminance():
    pixel = torch.tensor([255, 0, 0], dtype=torch.uint8).view(1, 3, 1, 1)
    assert convert_channels(pixel, 1).item() == 76  # 0.299 * 255, as PIL's convert("L")


def test_folder_of_pngs_loads_with_disjoint_splits(tmp_path):
    _write_pngs(tmp_path / "imgs", 10)
    _write_pngs(tmp_path / "imgs" / "sub", 5, mode="L")
    dm = ImageDataModule(f"folder:{tmp_path / 'imgs'}", image_size=8, batch_size=4, cache_dir=tmp_path)
    with pytest.warns(UserWarning, match="holding out 3 of 15"):
        dm.setup("fit")
    assert dm.name == f"folder:{(tmp_path / 'imgs').resolve()}"
    assert dm.channels == 3  # mixed grey and colour files: colour
    info = dm.describe()
    assert (info["train_samples"], info["heldout_samples"], info["skipped_corrupt"]) == (12, 3, 0)
    train = {t.numpy().tobytes() for t in _train_images(dm)}
    assert not any(h.numpy().tobytes() in train for h in dm._data.heldout)


def test_folder_skips_and_counts_a_corrupt_file(tmp_path):
    _write_pngs(tmp_path, 10)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really an image")
    dm = ImageDataModule(f"folder:{tmp_path}", image_size=8, batch_size=4, heldout_samples=2, cache_dir=tmp_path / "c")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\) \(.*broken\.png"):
        dm.setup("fit")
    assert dm.describe()["skipped_corrupt"] == 1
    assert dm.describe()["train_samples"] + dm.describe()["heldout_samples"] == 10


def test_folder_corrupt_file_is_an_error_when_asked(tmp_path):
    _write_pngs(tmp_path, 10)
    (tmp_path / "broken.png").write_bytes(b"garbage")
    dm = ImageDataModule(f"folder:{tmp_path}", image_size=8, heldout_samples=2, corrupt="error", cache_dir=tmp_path)
    with pytest.raises(DatasetError, match=r"cannot read image .*broken\.png.*corrupt='skip'"):
        dm.setup("fit")


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    dm = ImageDataModule(f"folder:{tmp_path}", cache_dir=tmp_path)
    with pytest.raises(DatasetError, match=r"no image files found in .*embedded 'photos' dataset"):
        dm.setup("fit")


def test_folder_channels_are_known_only_after_setup(tmp_path):
    _write_pngs(tmp_path, 10, mode="L")
    dm = ImageDataModule(f"folder:{tmp_path}", image_size=8, heldout_samples=2, cache_dir=tmp_path)
    with pytest.raises(RuntimeError, match=r"known only after setup\(\)"):
        dm.channels
    dm.setup()
    assert dm.channels == 1


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match=r"folder:.*does not exist"):
        ImageDataModule(f"folder:{tmp_path / 'nowhere'}")


def test_unknown_dataset_suggests_the_closest_name():
    with pytest.raises(DatasetError, match=r"Unknown dataset 'cifar100'.*folder:<path>.*Did you mean 'cifar10'\?"):
        ImageDataModule("cifar100")
    with pytest.raises(DatasetError, match=r"Unknown dataset 'phtos'.*Did you mean 'photos'\?"):
        parse_dataset("phtos")
    with pytest.raises(DatasetError, match=r"not a valid Hub reference"):
        parse_dataset("hf:")


def test_hub_name_offline_fails_at_once_with_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets  # noqa: F401  (import time is not what is measured)

    for name in ("cifar10", "hf:someone/images:train"):
        start = time.perf_counter()
        message = r"not in the local Hugging Face cache.*offline.*embedded 'photos' dataset"
        with pytest.raises(DatasetError, match=message) as err:
            ImageDataModule(name)
        assert time.perf_counter() - start < 2.0
        assert "\n" not in str(err.value) and f"Dataset {name!r}" in str(err.value)


def test_unreachable_hub_fails_fast_when_not_offline(monkeypatch):
    import datasets.config

    from lightning_checkerboard.data import hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False, raising=False)
    monkeypatch.setattr(hub, "_hub_reachable", lambda timeout=3.0: False)
    dm = ImageDataModule("mnist")
    assert dm.channels == 1  # known before loading
    with pytest.raises(DatasetError, match=r"'mnist': the Hugging Face Hub cannot be reached"):
        dm.prepare_data()


def test_training_set_smaller_than_a_batch_is_an_error(tmp_path):
    dm = _photos(tmp_path, train_samples=4, batch_size=8)
    with pytest.raises(DatasetError, match=r"4 training images, fewer than one batch of 8"):
        dm.train_dataloader()


def test_heldout_request_beyond_the_split_is_an_error(tmp_path):
    dm = _photos(tmp_path)
    assert torch.equal(dm.heldout_images(4), dm.heldout_images()[:4])
    with pytest.raises(ValueError, match=r"n must be at most the held-out size .* \(16\); got 17"):
        dm.heldout_images(17)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, r"batch_size must be a positive integer; got 0"),
        ({"channels": 2}, r"channels must be None, 1 or 3; got 2"),
        ({"corrupt": "ignore"}, r"corrupt must be one of '?skip'?, '?error'?; got 'ignore'"),
        ({"heldout_samples": 0}, r"heldout_samples must be a positive integer; got 0"),
        ({"image_size": 3}, r"image_size must be an integer >= 4; got 3"),
        ({"decode_workers": 0}, r"decode_workers must be an integer from 1 to \d+ \(the CPU count, at least 4\); got 0"),
        ({"num_workers": -1}, r"num_workers must be an integer from 0 to \d+ \(the CPU count, at least 4\); got -1"),
        ({"data_cache": "no"}, r"data_cache must be True or False; got 'no'"),
        ({"streaming": 1}, r"streaming must be None, True or False; got 1"),
    ],
)
def test_arguments_are_checked_where_they_enter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageDataModule("photos", **kwargs)


def _fake_hub_dataset(with_test: bool, corrupt_row: bool):
    from datasets import Dataset, DatasetDict, Features, Value
    from datasets import Image as ImageFeature

    rng = np.random.default_rng(1)
    features = Features({"label": Value("int64"), "picture": ImageFeature()})

    def split(count):
        images = [Image.fromarray(rng.integers(0, 256, (10, 14), dtype=np.uint8), "L") for _ in range(count)]
        return Dataset.from_dict({"label": list(range(count)), "picture": images}, features=features)

    splits = {"train": split(30)}
    if corrupt_row:
        rows = splits["train"].to_dict()
        rows["picture"][7] = {"bytes": b"not an image", "path": None}
        splits["train"] = Dataset.from_dict(rows, features=features)
    if with_test:
        splits["test"] = split(12)
    return DatasetDict(splits)


@pytest.mark.parametrize("with_test", [True, False])
def test_hub_dataset_finds_its_image_column_and_held_out_split(monkeypatch, tmp_path, with_test):
    import datasets

    from lightning_checkerboard.data import hub

    fake = _fake_hub_dataset(with_test, corrupt_row=True)
    monkeypatch.setattr(hub, "hub_is_cached", lambda spec: True)
    monkeypatch.setattr(datasets, "load_dataset", lambda repo, **kw: fake)
    dm = ImageDataModule("hf:someone/greys", image_size=8, batch_size=4, heldout_samples=5, cache_dir=tmp_path)
    assert dm.name == "hf:someone/greys:train"
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\) \(train\[7\]\)"):
        dm.setup("fit")
    info = dm.describe()
    assert info["channels"] == 1 and info["skipped_corrupt"] == 1
    assert info["heldout_from"] == ("test split" if with_test else "seeded subset")
    assert (info["train_samples"], info["heldout_samples"]) == ((29, 5) if with_test else (24, 5))
    with pytest.raises(DatasetError, match=r"cannot read image train\[7\]"):
        ImageDataModule("hf:someone/greys", image_size=8, heldout_samples=5, corrupt="error").setup()


def test_hub_cache_is_detected_without_loading(monkeypatch, tmp_path):
    import datasets.config

    from lightning_checkerboard.data.hub import HUB_SHORTHANDS, hub_is_cached

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path))
    assert not hub_is_cached(HUB_SHORTHANDS["cifar10"])
    (tmp_path / "uoft-cs___cifar10" / "plain_text" / "0.0.0" / "abc123").mkdir(parents=True)
    assert hub_is_cached(HUB_SHORTHANDS["cifar10"])
