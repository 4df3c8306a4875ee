"""recipes/bench_adapt.py writes its own section of speed.md and keeps the rest of the file."""

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
    out = tmp_path / "speed.md"
    assert bench.main(["--config", "small", "--quick", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "3 `Upsample2D` sites fused" in text
    assert "| decode (no grad) |" in text and "| decode forward+backward |" in text


def test_bad_size_is_a_usage_error():
    with pytest.raises(SystemExit) as info:
        bench.main(["--size", "100"])
    assert info.value.code == 2
