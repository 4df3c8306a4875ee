"""Figures for W&B: RGB uint8 arrays, optionally saved as PNG."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_checkerboard.functional.plots import figure_to_array, plot_period_pnr, plot_spectra


def test_spectra_plot_is_an_rgb_uint8_image_and_saves_a_png(tmp_path):
    path = tmp_path / "figures" / "spectra.png"
    image = plot_spectra({"real": torch.logspace(0, -4, 33), "generated": np.logspace(0, -3, 33)}, path=path)
    assert image.dtype == np.uint8 and image.shape == (400, 640, 3)
    assert image.min() < 100 and image.max() == 255  # something was drawn on a white background
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_spectra_plot_differs_when_the_spectra_differ():
    a = plot_spectra({"real": torch.logspace(0, -4, 17), "generated": torch.logspace(0, -4, 17)})
    b = plot_spectra({"real": torch.logspace(0, -4, 17), "generated": torch.logspace(0, -1, 17)})
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_pnr_bars_accept_one_series_or_several():
    one = plot_period_pnr(torch.tensor([12.0, 3.0, -0.5]), dpi=50)
    several = plot_period_pnr({"deconv": [12.0, 3.0, -0.5], "nearest_conv": [-0.3, -0.2, -0.4]}, dpi=50)
    assert one.shape == several.shape == (200, 320, 3)
    assert not np.array_equal(one, several)


def test_figure_to_array_returns_a_contiguous_copy():
    from matplotlib.figure import Figure

    image = figure_to_array(Figure(figsize=(1, 1), dpi=20))
    assert image.flags["C_CONTIGUOUS"] and image.shape == (20, 20, 3)


def test_plot_errors_name_the_problem():
    with pytest.raises(ValueError, match="at least one label"):
        plot_spectra({})
    with pytest.raises(ValueError, match="spectrum 'real' must be 1-D.*\\(2, 2\\)"):
        plot_spectra({"real": np.ones((2, 2))})
    with pytest.raises(ValueError, match="at least one series"):
        plot_period_pnr({})
    with pytest.raises(ValueError, match="same non-zero length.*\\(2,\\), \\(3,\\)"):
        plot_period_pnr({"a": [1.0, 2.0], "b": [1.0, 2.0, 3.0]})
