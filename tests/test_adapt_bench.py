"""recipes/benchmarks/bench_adapt.py writes its own section of speed.md and keeps the rest of the file."""

from __future__ import annotations

import pytest

from _recipes import load_recipe

bench = load_recipe("bench_adapt")


def test_section_is_appended_then_replaced_in_place(tmp_path):
    path = tmp_path / "speed.md"
    path.write_text("# Upsampler speed\n\n| a | b |\n", encoding="utf-8")
    bench.write_section(path, f"{bench.START}\nfirst\n{bench.END}\n")
    path.write_text(path.read_text(encoding="utf-8") + "\ntrailer written later\n", encoding="utf-8")
    bench.write_section(path, f"{bench.START}\nsecond\n{bench.END}\n")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Upsampler speed\n\n| a | b |\n")
    assert "first" not in text and text.count(bench.START) == 1
    assert f"{bench.START}\nsecond\n{bench.END}\n" in text and text.endswith("trailer written later\n")


@pytest.mark.slow
def test_smoke_run_fuses_the_three_decoder_upsamplers(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(bench.CONFIGS, "small", ((32, 32, 32, 32), 1))  # the same layout, narrow: fast
    monkeypatch.setattr(bench, "QUICK_SITE_SHAPES", [("UNet", "nearest", 8, 4, 4), ("VAE", "bilinear", 4, 4, 4)])
    out = tmp_path / "speed.md"
    assert bench.main(["--config", "small", "--quick", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "3 `Upsample2D` sites fused" in text
    assert "| decode (no grad) |" in text and "| decode forward+backward |" in text
    assert "| UNet | nearest | 8 → 4 | 4² |" in text and "| VAE | bilinear | 4 → 4 | 4² |" in text
    assert "Regenerate with `python recipes/benchmarks/bench_adapt.py --config small --quick --out" in text


def test_single_sites_are_timed_in_both_workloads_and_rendered():
    pytest.importorskip("diffusers")
    rows = bench.bench_sites([("UNet", "nearest", 4, 2, 3), ("VAE", "bilinear", 2, 2, 3)], batch=1, repeats=2)
    assert [(r["mode"], r["in"], r["out"], r["size"]) for r in rows] == [("nearest", 4, 2, 3), ("bilinear", 2, 2, 3)]
    for row in rows:
        assert row["workloads"].keys() == {"no grad", "forward+backward"}
        assert all(w["speedup"] > 0 and w["original_s"] > 0 for w in row["workloads"].values())
    decoder = {"sites": 3, "max_rel_error": 0.0,
               "workloads": {"decode (no grad)": {"original_s": 1.0, "fused_s": 0.5, "speedup": 2.0}}}
    text = bench.render(decoder, config="small", size=32, batch=1, repeats=2, sites=rows)
    assert text.count("| UNet | nearest | 4 → 2 | 3² |") == 1 and "### Single sites" in text


def test_site_shapes_span_the_stable_diffusion_upsamplers():
    channels = {c for _, _, c_in, c_out, _ in bench.SITE_SHAPES for c in (c_in, c_out)}
    sizes = {size for *_, size in bench.SITE_SHAPES}
    assert min(channels) == 64 and max(channels) == 1280 and min(sizes) == 4 and max(sizes) == 64
    nearest = {(c, size) for _, mode, c, _, size in bench.SITE_SHAPES if mode == "nearest"}
    assert nearest >= {(1280, 8), (1280, 16), (640, 32)}  # SD-1.5's UNet upsamplers at a 64² latent
    assert {mode for _, mode, *_ in bench.SITE_SHAPES} == {"nearest", "bilinear"}


def test_bad_size_is_a_usage_error():
    with pytest.raises(SystemExit) as info:
        bench.main(["--size", "100"])
    assert info.value.code == 2
