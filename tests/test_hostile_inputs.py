"""Files a user receives, built to hurt: ``score``, ``folder:`` datasets and the data cache must stay safe.

Every hostile file is written by the test that needs it (no binary fixtures): pictures whose header
claims 13000 × 13000 pixels, arrays of pickled objects or of more data than the file holds, zip
members that expand far beyond their size, link loops, links out of the folder, FIFOs where files
should be, unreadable subfolders, damaged or tampered cache entries. Each must end in one line (exit
2 for the command, a one-line exception or warning for the library), never a traceback, a hang, a
memory blow-up or a silently different result.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lightning_checkerboard.data import DatasetError, ImageDataModule
from lightning_checkerboard.data import cache as cache_module
from lightning_checkerboard.data.cache import ensure_cached
from lightning_checkerboard.data.folder import folder_images
from lightning_checkerboard.score.__main__ import main as score_main
from lightning_checkerboard.score.reading import SkipReport, open_source, survey
from lightning_checkerboard.score.runner import ScoreOptions, score_images

PROG = "python -m lightning_checkerboard.score"


# --- builders ------------------------------------------------------------------------------------------------


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height`` RGB pixels, holding the data of four rows only."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress((b"\x00" + b"\x7f" * (3 * width)) * 4, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def _images(folder: Path, count: int = 6, size: int = 32, seed: int = 0, suffix: str = "png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"img{i:03d}.{suffix}")
    return folder


def _npz_member(path: Path, header_shape: tuple, data: bytes, *, fortran: bool = False, dtype="|u1",
                compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """An ``.npz`` whose one member ``a`` has the given ``.npy`` header and data bytes (which may disagree)."""
    header = {"descr": dtype, "fortran_order": fortran, "shape": header_shape}
    text = repr(header).encode("latin1")
    pad = (64 - (10 + len(text) + 1) % 64) % 64
    text += b" " * pad + b"\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("a.npy", npy)
    return path


def _score(capsys, *argv) -> tuple[int, str, str]:
    code = score_main([*map(str, argv), "--device", "cpu"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(code: int, out: str, err: str, match: str) -> None:
    assert code == 2, (code, out, err)
    assert out == "", out
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and "usage:" not in err, err
    assert err.startswith(("error: ", f"{PROG}: error: ")), err
    assert match in err, err


def _run_with_deadline(function, seconds: float = 60.0):
    """Run ``function`` in a thread; fail (instead of hanging the suite) when it has not returned in time."""
    result: dict = {}

    def target():
        try:
            result["value"] = function()
        except BaseException as exc:  # handed back to the test
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    if "error" in result:
        raise result["error"]
    return result.get("value")


# --- pictures too large to decode ----------------------------------------------------------------------------


def test_a_picture_claiming_13000_squared_pixels_is_skipped_and_counted_from_its_header(capsys, tmp_path):
    folder = _images(tmp_path / "images")
    _png_claiming(folder / "bomb.png", 13000, 13000)
    report = tmp_path / "r.json"
    code, out, err = _score(capsys, folder, "--json", report)
    assert code == 0, err
    payload = json.loads(report.read_text())
    assert payload["counts"]["generated"]["too_large"] == 1 and payload["counts"]["generated"]["scored"] == 6
    assert payload["skipped"]["generated"]["too_large"] == [str(folder / "bomb.png")]
    assert payload["protocol"]["max_pixels"] == 4096 * 4096
    (warning,) = err.strip().splitlines()
    assert warning.startswith("warning: skipped 1 GENERATED image(s) of more than --max-pixels 16777216")
    assert "bomb.png (13000×13000)" in warning and "1 over --max-pixels skipped" in out


def test_a_folder_of_nothing_but_oversized_pictures_is_one_line(capsys, tmp_path):
    folder = tmp_path / "bombs"
    folder.mkdir()
    for i in range(3):
        _png_claiming(folder / f"bomb{i}.png", 13000, 13000)
    _one_line_error(*_score(capsys, folder), "3 of its 3 image(s) have more than --max-pixels 16777216 pixels")


def test_max_pixels_moves_the_limit_both_ways(capsys, tmp_path):
    folder = _images(tmp_path / "images", count=4, size=64)
    code, out, err = _score(capsys, folder, "--max-pixels", 64 * 64 - 1)
    _one_line_error(code, out, err, "--max-pixels 4095")
    code, out, err = _score(capsys, folder, "--max-pixels", 64 * 64)
    assert code == 0 and "4 of 4 images" in out and err == ""
    _one_line_error(*_score(capsys, folder, "--max-pixels", "0"), "--max-pixels: expected an integer from 1")


def test_the_limit_grows_with_the_crop_size():
    # 64 x size**2 pixels where that exceeds 4096**2: a 1024 crop reads 8192 x 8192 images.
    from lightning_checkerboard.score.runner import default_max_pixels

    assert default_max_pixels(None) == default_max_pixels(512) == 4096**2
    assert default_max_pixels(1024) == 8192**2


def test_a_picture_swapped_for_a_larger_one_after_the_survey_is_not_decoded(tmp_path):
    folder = _images(tmp_path / "images", count=2)
    source = open_source(str(folder), "GENERATED", max_pixels=64 * 64)
    entries = survey(source, "skip", SkipReport(), max_pixels=64 * 64)
    _png_claiming(Path(entries[0].label), 5000, 5000)  # replaced between the header pass and the decode
    with pytest.raises(ValueError, match=r"5000×5000 pixels, more than the 4096 allowed"):
        source.load(entries[0].index)


def test_an_oversized_picture_in_a_training_folder_is_an_unreadable_image_not_a_decode(tmp_path):
    folder = _images(tmp_path / "images", count=12, size=16)
    _png_claiming(folder / "bomb.png", 13000, 13000)
    module = ImageDataModule(f"folder:{folder}", image_size=8, batch_size=2, heldout_samples=2, data_cache=False,
                             decode_workers=1)
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\) \(.*bomb\.png"):
        module.setup()
    with pytest.raises(DatasetError, match=r"bomb\.png \(13000×13000 pixels, more than the 67108864 allowed\)"):
        ImageDataModule(f"folder:{folder}", image_size=8, batch_size=2, heldout_samples=2, data_cache=False,
                        decode_workers=1, corrupt="error").setup()


@pytest.mark.parametrize("name, minimum", [("num_workers", 0), ("decode_workers", 1)])
def test_workers_above_the_cpu_count_are_one_line_before_any_process_starts(tmp_path, name, minimum):
    folder = _images(tmp_path / "images", count=12, size=16)
    settings = {"image_size": 8, "batch_size": 2, "heldout_samples": 2, "data_cache": False}
    cap = max(4, os.cpu_count())
    with pytest.raises(ValueError, match=rf"^{name} must be an integer from {minimum} to {cap} "
                                         r"\(the CPU count, at least 4\); got 100000\.$"):
        ImageDataModule(f"folder:{folder}", **settings, **{name: 100_000})
    with pytest.raises(ValueError, match=rf"^{name} must be an integer from {minimum} to {cap} "):
        ImageDataModule(f"folder:{folder}", **settings, **{name: cap + 1})
    ImageDataModule(f"folder:{folder}", **settings, **{name: cap})  # the cap itself is allowed


def test_decode_into_refuses_more_workers_than_cpus(tmp_path):
    from lightning_checkerboard.data.decode import decode_into

    source = folder_images(_images(tmp_path / "images", count=4, size=16), "folder:x")
    out = np.zeros((4, 3, 8, 8), np.uint8)
    with pytest.raises(ValueError, match=r"decode_workers must be an integer from 1 to"):
        decode_into(source, np.arange(4), 8, out, workers=max(4, os.cpu_count()) + 1)


# --- arrays ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["npy", "npz"])
def test_an_array_of_python_objects_is_refused_before_anything_is_unpickled(capsys, tmp_path, suffix):
    path = tmp_path / f"objects.{suffix}"
    objects = np.array([{"a": 1}, None], dtype=object)
    if suffix == "npy":
        np.save(path, objects, allow_pickle=True)
    else:
        np.savez(path, images=objects)
    _one_line_error(*_score(capsys, path), "holds Python objects (which would be unpickled)")


def test_an_npy_whose_header_claims_more_than_the_file_holds_is_one_line(capsys, tmp_path):
    path = tmp_path / "short.npy"
    np.save(path, np.zeros((4, 32, 32, 3), np.uint8))
    path.write_bytes(path.read_bytes().replace(b"'shape': (4,", b"'shape': (9,"))  # same header length
    _one_line_error(*_score(capsys, path), "fewer than the")


def test_an_npz_member_is_streamed_an_image_at_a_time_not_loaded_whole(tmp_path):
    # 32 MB of images that deflate to a few kilobytes: a zip bomb in miniature.
    count, side = 170, 256
    images = np.zeros((count, side, side, 3), np.uint8)
    images[:, ::2, ::2] = 3  # a period-2 pattern, so the score has something to find
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, images=images)
    assert path.stat().st_size < images.nbytes // 100
    del images
    tracemalloc.start()
    try:
        run = score_images(str(path), options=ScoreOptions(device="cpu", batch_size=8, progress=False))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run.measurements[0].result["checkerboard"]["images"] == count
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.1f} MiB for a 32 MiB member"


def test_an_npz_member_shorter_than_its_header_counts_the_missing_images(capsys, tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8).tobytes()
    path = _npz_member(tmp_path / "short.npz", (40, 32, 32, 3), data)
    report = tmp_path / "r.json"
    code, out, err = _score(capsys, path, "--json", report)
    assert code == 0, err
    counts = json.loads(report.read_text())["counts"]["generated"]
    assert (counts["found"], counts["scored"], counts["unreadable"]) == (40, 4, 36)
    _one_line_error(*_score(capsys, path, "--corrupt", "error"), "the archive member ends inside image 4")


def test_a_fortran_order_npz_member_is_one_line(capsys, tmp_path):
    path = _npz_member(tmp_path / "f.npz", (2, 32, 32, 3), bytes(2 * 32 * 32 * 3), fortran=True)
    _one_line_error(*_score(capsys, path), "Fortran order")


def test_an_npz_with_2000_arrays_lists_five_of_them(capsys, tmp_path):
    path = tmp_path / "many.npz"
    np.savez(path, **{f"k{i}": np.zeros(1, np.uint8) for i in range(2000)})
    code, out, err = _score(capsys, path)
    _one_line_error(code, out, err, "holds 2000 arrays (k0, k1, k2, k3, k4, … 1995 more); name one with --npz-key")
    assert len(err) < 300
    _one_line_error(*_score(capsys, path, "--npz-key", "nope"), "its arrays are k0, k1, k2, k3, k4, … 1995 more")


def test_an_npz_that_is_not_a_zip_is_one_line(capsys, tmp_path):
    path = tmp_path / "fake.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    _one_line_error(*_score(capsys, path), "cannot read the array")


# --- folders ---------------------------------------------------------------------------------------------------


def _hostile_folder(tmp_path: Path, kind: str) -> Path:
    folder = _images(tmp_path / kind, count=4)
    if kind == "loop":
        os.symlink("loop.png", folder / "loop.png")
    elif kind == "outside":
        outside = _images(tmp_path / "elsewhere", count=1)
        os.symlink(outside / "img000.png", folder / "leak.png")
    elif kind == "fifo":
        os.mkfifo(folder / "pipe.png")
    elif kind == "dangling":
        os.symlink("missing.png", folder / "gone.png")
    return folder


_FOLDER_REASONS = {
    "loop": "loop.png: cannot be resolved",
    "outside": "leak.png: a link that leads outside",
    "fifo": "pipe.png: a FIFO, not a regular file",
    "dangling": "gone.png: cannot be read (No such file or directory)",
}


@pytest.mark.parametrize("kind", sorted(_FOLDER_REASONS))
def test_a_folder_entry_that_breaks_the_listing_rule_is_one_line_in_score(capsys, tmp_path, kind):
    folder = _hostile_folder(tmp_path, kind)
    code, out, err = _run_with_deadline(lambda: _score(capsys, folder))
    _one_line_error(code, out, err, _FOLDER_REASONS[kind])
    assert "fix or remove this entry" in err


@pytest.mark.parametrize("kind", sorted(_FOLDER_REASONS))
def test_a_folder_entry_that_breaks_the_listing_rule_is_one_line_for_a_dataset(tmp_path, kind):
    folder = _hostile_folder(tmp_path, kind)
    with pytest.raises(DatasetError, match=_FOLDER_REASONS[kind].replace("(", r"\(").replace(")", r"\)")):
        _run_with_deadline(lambda: folder_images(folder, f"folder:{folder}"))


def test_an_unreadable_subfolder_is_one_line(capsys, tmp_path, monkeypatch):
    folder = _images(tmp_path / "images", count=4)
    _images(folder / "locked", count=2)
    real_scandir = os.scandir

    def scandir(path):  # tests may run as root, which reads any folder: refuse this one as the OS would
        if str(path).rstrip("/").endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    _one_line_error(*_score(capsys, folder), "locked: a folder that cannot be read (Permission denied)")
    with pytest.raises(DatasetError, match=r"locked: a folder that cannot be read \(Permission denied\)"):
        folder_images(folder, f"folder:{folder}")


def test_a_link_to_an_image_inside_the_folder_is_read(capsys, tmp_path):
    folder = _images(tmp_path / "images", count=4)
    os.symlink("img000.png", folder / "again.png")
    code, out, err = _score(capsys, folder)
    assert code == 0 and "5 of 5 images" in out, err


# --- command-line mistakes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "DIR", "DIR/"])
def test_json_pointing_at_a_folder_or_nothing_is_refused_before_any_scoring(capsys, tmp_path, monkeypatch, value):
    import lightning_checkerboard.score.runner as runner

    def never(*args, **kwargs):
        raise AssertionError("scored although --json could never be written")

    monkeypatch.setattr(runner, "score_images", never)
    folder = _images(tmp_path / "images", count=4)
    target = value.replace("DIR", str(tmp_path))
    _one_line_error(*_score(capsys, folder, "--json", target),
                    "--json needs a file path" if not value else "is a folder; give a file path")


def test_figures_pointing_at_a_file_is_refused_before_any_scoring(capsys, tmp_path):
    folder = _images(tmp_path / "images", count=4)
    (tmp_path / "file").write_text("x")
    _one_line_error(*_score(capsys, folder, "--figures", tmp_path / "file"), "exists and is not a folder")


def test_a_size_too_small_for_the_default_levels_names_the_levels_that_fit(capsys, tmp_path):
    folder = _images(tmp_path / "images", count=4, size=64)
    _one_line_error(*_score(capsys, folder, "--size", "16"),
                    "--size 16 does not fit the default --levels 3: the size must be a multiple of 2**levels = 8 "
                    "and at least 32; --levels 2 or 1 fit it")
    _one_line_error(*_score(capsys, folder, "--size", "6"), "no level fits it")
    code, out, err = _score(capsys, folder, "--size", "16", "--levels", "2")
    assert code == 0 and "levels 2 (periods 2, 4)" in out, err


@pytest.mark.parametrize("argv, match", [
    (["--levels", "1000000"], "--levels: expected an integer from 1 to 16, got 1000000"),
    (["--levels", "9" * 5000], "--levels: expected an integer, got '99999999999999999999… (5000 characters)'"),
    (["--size", "100000"], "--size: expected an integer from 1 to 65536"),
    (["--batch-size", "x"], "--batch-size: expected an integer, got 'x'"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--siz", "32"], "unrecognized arguments: --siz"),  # no prefix matching
])
def test_a_bad_flag_is_one_line_pointing_at_help(capsys, tmp_path, argv, match):
    folder = _images(tmp_path / "images", count=4)
    code, out, err = _score(capsys, folder, *argv)
    _one_line_error(code, out, err, match)
    assert err.startswith(f"{PROG}: error: ") and err.rstrip().endswith("(see --help)")


def test_a_path_that_does_not_exist_says_so(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _one_line_error(*_score(capsys, "samples/"), "GENERATED 'samples/' does not exist")
    _one_line_error(*_score(capsys, "samples"), "GENERATED 'samples' does not exist")
    _one_line_error(*_score(capsys, ""), "GENERATED is empty")


def test_a_reference_of_other_sizes_names_its_real_sizes(capsys, tmp_path):
    generated = _images(tmp_path / "generated", count=4, size=64)
    reference = _images(tmp_path / "reference", count=3, size=7)
    _one_line_error(*_score(capsys, generated, "--reference", reference),
                    "its sizes: 7x7 (3 images, too small for --levels 3)")


# --- the data cache --------------------------------------------------------------------------------------------


def _fill_with(seed: int):
    calls = []

    def fill(out: np.ndarray):
        calls.append(seed)
        rng = np.random.default_rng(seed)
        for start in range(0, len(out), 50):
            out[start:start + 50] = rng.integers(0, 256, out[start:start + 50].shape, dtype=np.uint8)
        return True, []

    return fill, calls


_LARGE = {"dataset": "folder:x", "split": "all", "image_size": 160, "fingerprint": "f", "count": 300}


def test_a_4_kb_corruption_between_the_old_sampled_blocks_is_caught(tmp_path):
    # 23 MB: the former check hashed 64 blocks of 256 KB, spaced 368 KB apart, and missed this.
    fill, calls = _fill_with(0)
    built = ensure_cached(tmp_path, fill=fill, **_LARGE)
    assert built.nbytes > 23_000_000
    expected = np.array(built.images[100])
    offset = 300 * 1024 + 16 * 1024  # past the first 256 KB block, before the second one
    with open(built.path, "r+b") as handle:
        handle.seek(offset)
        handle.write(bytes(4096))
    with pytest.warns(UserWarning, match=r"is corrupt \(.*fails its checksum\); rebuilding it"):
        again = ensure_cached(tmp_path, fill=fill, **_LARGE)
    assert calls == [0, 0] and np.array_equal(again.images[100], expected)


def _folder_module(folder: Path, cache: Path, **overrides) -> ImageDataModule:
    settings = {"image_size": 8, "batch_size": 4, "heldout_samples": 2, "cache_dir": cache, "decode_workers": 1,
                **overrides}
    return ImageDataModule(f"folder:{folder}", **settings)


def _all_images(module: ImageDataModule) -> np.ndarray:
    train = module._data.train
    return np.concatenate([train.__getitems__(list(range(len(train)))).numpy(),
                           (module.heldout_images() * 255).round().byte().numpy()])


def test_a_source_replaced_by_a_same_size_file_with_its_mtime_restored_rebuilds(tmp_path):
    folder = _images(tmp_path / "images", count=12, size=16, suffix="bmp")  # BMP: same size for the same shape
    first = _folder_module(folder, tmp_path / "cache")
    first.setup()
    target = folder / "img003.bmp"
    before = target.stat()
    Image.new("RGB", (16, 16), (255, 0, 0)).save(target)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert target.stat().st_size == before.st_size and target.stat().st_mtime_ns == before.st_mtime_ns
    again = _folder_module(folder, tmp_path / "cache")
    again.setup()
    red = np.array([255, 0, 0], np.uint8).reshape(3, 1, 1)
    assert not any((image == red).all() for image in _all_images(first))
    assert any((image == red).all() for image in _all_images(again))


def _manifest(cache: Path) -> Path:
    (path,) = cache.glob("folder-*.json")
    return path


def _tamper(cache: Path, change) -> None:
    path = _manifest(cache)
    manifest = json.loads(path.read_text())
    replaced = change(manifest)
    path.write_text(json.dumps(manifest if replaced is None else replaced))


_TAMPERING = {
    "a good image listed as unreadable": (lambda m: m["failures"].append([2, "img002.png", "made up"]),
                                          "fails its checksum"),
    "failures not a list": (lambda m: m.__setitem__("failures", "all"), "field failures must be a list"),
    "a failure of the wrong shape": (lambda m: m.__setitem__("failures", [["x"]]),
                                     "field failures[0] must be an [index, label, reason] list"),
    "a failure index out of range": (lambda m: m.__setitem__("failures", [[10**9, "a", "b"]]),
                                     "field failures[0][0] must be an int from 0 to 11"),
    "channels": (lambda m: m.__setitem__("channels", 2), "field channels must be 1 or 3"),
    "bytes as text": (lambda m: m.__setitem__("bytes", "12"), "field bytes must be an int"),
    "a data path out of the cache": (lambda m: m.__setitem__("data", "../../etc/passwd"),
                                     "field data must be a data file name of this entry"),
    "an unknown field": (lambda m: m.__setitem__("run", "rm -rf ~"), "unknown field(s) run"),
    "a missing field": (lambda m: m.pop("checksum") and None, "missing field(s) checksum"),
    "a checksum that is not hex": (lambda m: m.__setitem__("checksum", "x" * 64), "field checksum must be 64 hex"),
    "an identity that is not a mapping": (lambda m: m.__setitem__("identity", None), "field identity must be a mapping"),
    "not an object": (lambda m: [m], "field (the whole file) must be a JSON object"),
}


@pytest.mark.parametrize("name", sorted(_TAMPERING))
def test_a_tampered_manifest_is_rebuilt_with_one_warning(tmp_path, name):
    change, reason = _TAMPERING[name]
    folder = _images(tmp_path / "images", count=12, size=16)
    first = _folder_module(folder, tmp_path / "cache")
    first.setup()
    expected = _all_images(first)
    _tamper(tmp_path / "cache", change)
    again = _folder_module(folder, tmp_path / "cache")
    with pytest.warns(UserWarning) as caught:
        again.setup()
    (warning,) = [w for w in caught if "rebuilding it" in str(w.message)]
    text = str(warning.message)
    assert "\n" not in text and reason in text, text
    assert np.array_equal(_all_images(again), expected) and again.describe()["skipped_corrupt"] == 0


def test_a_manifest_that_is_a_fifo_neither_hangs_nor_is_trusted(tmp_path):
    folder = _images(tmp_path / "images", count=12, size=16)
    _folder_module(folder, tmp_path / "cache").setup()
    manifest = _manifest(tmp_path / "cache")
    manifest.unlink()
    os.mkfifo(manifest)
    again = _folder_module(folder, tmp_path / "cache")
    with pytest.warns(UserWarning, match=r"unreadable manifest \(.*a FIFO, not a regular file"):
        _run_with_deadline(again.setup)
    assert manifest.is_file()


def test_a_data_file_linked_out_of_the_cache_is_not_read(tmp_path):
    folder = _images(tmp_path / "images", count=12, size=16)
    _folder_module(folder, tmp_path / "cache").setup()
    (data,) = (tmp_path / "cache").glob("folder-*.npy")
    moved = tmp_path / "elsewhere.npy"
    data.rename(moved)
    os.symlink(moved, data)
    with pytest.warns(UserWarning, match=r"a link that leads outside .*; rebuilding it"):
        _folder_module(folder, tmp_path / "cache").setup()


def test_a_fifo_lock_is_replaced_instead_of_blocking_forever(tmp_path):
    entry = cache_module.cache_entry(tmp_path, _LARGE["dataset"], _LARGE["split"], 8)
    os.mkfifo(entry.with_name(entry.name + ".lock"))
    fill, calls = _fill_with(1)
    settings = {**_LARGE, "image_size": 8, "count": 3}
    with pytest.warns(UserWarning, match=r"lock .* was a FIFO, not a regular file; replacing it"):
        built = _run_with_deadline(lambda: ensure_cached(tmp_path, fill=fill, **settings))
    assert built.built and calls == [1] and entry.with_name(entry.name + ".lock").is_file()


def test_a_lock_that_is_a_folder_is_one_line(tmp_path):
    entry = cache_module.cache_entry(tmp_path, _LARGE["dataset"], _LARGE["split"], 8)
    entry.with_name(entry.name + ".lock").mkdir(parents=True)
    fill, _ = _fill_with(1)
    with pytest.raises(DatasetError, match=r"lock .* is a folder, not a regular file, and cannot be replaced"):
        ensure_cached(tmp_path, fill=fill, **{**_LARGE, "image_size": 8, "count": 3})


def test_an_opened_picture_closes_its_file_when_closed(tmp_path):
    """Each folder image used to leave its file to the garbage collector (an "unclosed file" warning line per run)."""
    import gc
    import warnings

    from PIL import Image

    from lightning_checkerboard._untrusted import open_image

    Image.new("RGB", (8, 6), (10, 20, 30)).save(tmp_path / "a.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open_image(tmp_path / "a.png", max_pixels=100, root=tmp_path) as image:
            assert image.convert("RGB").getpixel((0, 0)) == (10, 20, 30)
        del image
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_a_postscript_file_named_like_a_png_is_refused_before_any_program_reads_it(tmp_path):
    """Pillow opens EPS by handing it to Ghostscript; a received picture must never get that far."""
    from lightning_checkerboard._untrusted import UntrustedFileError, open_image

    fake = tmp_path / "final.png"
    fake.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(UntrustedFileError, match="not a picture that can be read"):
        open_image(fake, max_pixels=100, root=tmp_path)
