"""The upsampler registry: names, errors, per-stage specs and entry-point plugins."""

from __future__ import annotations

import re
import sys
import textwrap
import warnings

import pytest
import torch
from torch import nn

import lightning_checkerboard as lcb
from lightning_checkerboard.upsamplers import registry

REQUIRED = [
    "bilinear_additive",
    "bilinear_conv",
    "carafe",
    "deconv",
    "deconv_k3",
    "dysample",
    "nearest_conv",
    "pixel_shuffle",
    "pixel_shuffle_icnr",
]


@pytest.fixture
def clean_registry():
    """Undo registrations and entry-point loading done by a test."""
    saved = dict(registry._registry)
    loaded = registry._entry_points_loaded
    yield
    registry._registry.clear()
    registry._registry.update(saved)
    registry._entry_points_loaded = loaded


def test_required_names_are_registered_and_reexported():
    names = lcb.list_upsamplers()
    assert set(REQUIRED) <= set(names)
    assert any(name.startswith("deconv_") and name != "deconv_k3" for name in names), "a filtered variant"
    assert lcb.create_upsampler is registry.create_upsampler


def test_list_upsamplers_filters_with_shell_patterns_and_sorts():
    assert lcb.list_upsamplers("pixel_*") == ["pixel_shuffle", "pixel_shuffle_icnr"]
    assert lcb.list_upsamplers("*_conv") == ["bilinear_conv", "nearest_conv"]
    assert lcb.list_upsamplers("no_such_*") == []


def test_natural_sort_puts_k3_before_k10(clean_registry):
    for name in ("zz_k10", "zz_k3"):
        registry.register_upsampler(name)(nn.Identity)
    assert lcb.list_upsamplers("zz_*") == ["zz_k3", "zz_k10"]


def test_unknown_name_lists_valid_names_and_suggests_the_closest():
    with pytest.raises(ValueError, match=r"Unknown upsampler 'nearest_cnov'\. Did you mean 'nearest_conv'\?") as info:
        lcb.create_upsampler("nearest_cnov", 4, 4)
    for name in REQUIRED:
        assert name in str(info.value)


def test_unknown_name_without_close_match_still_lists_valid_names():
    with pytest.raises(ValueError, match=r"Unknown upsampler 'xyz'\. Valid names: .*deconv"):
        lcb.create_upsampler("xyz", 4, 4)


def test_duplicate_registration_raises(clean_registry):
    with pytest.raises(ValueError, match="'deconv' is already registered"):
        lcb.register_upsampler("deconv")(nn.Identity)


@pytest.mark.parametrize("bad", ["Deconv", "1x", "with space", "", None])
def test_malformed_names_are_rejected(bad):
    message = f"name must be lower-case letters, digits and underscores, starting with a letter; got {bad!r}."
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        lcb.register_upsampler(bad)


def test_unknown_option_names_the_options_the_layer_takes():
    with pytest.raises(TypeError, match=r"got unknown option\(s\) paddin; it takes: scale, padding, impl, bias"):
        lcb.create_upsampler("nearest_conv", 4, 4, paddin="reflect")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"padding": "circular"}, r"padding must be one of 'zeros', 'reflect'; got 'circular'"),
        ({"impl": "fast"}, r"impl must be one of 'fused', 'reference'; got 'fast'"),
        ({"scale": 1}, r"scale must be an integer >= 2; got 1"),
        ({"scale": 2.0}, r"scale must be an integer >= 2; got 2\.0"),
    ],
)
def test_bad_option_values_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        lcb.create_upsampler("nearest_conv", 4, 4, **options)


@pytest.mark.parametrize(
    ("channels", "message"),
    [
        ((0, 4), "in_channels must be a positive integer; got 0."),
        ((4, -1), "out_channels must be a positive integer; got -1."),
        ((4.0, 4), "in_channels must be a positive integer; got 4.0."),
        ((True, 4), "in_channels must be a positive integer; got True."),
    ],
)
def test_bad_channel_counts_are_rejected(channels, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        lcb.create_upsampler("deconv", *channels)


def test_get_upsampler_factory_returns_what_was_registered():
    assert registry.get_upsampler_factory("deconv") is registry._registry["deconv"]
    with pytest.raises(ValueError, match="Unknown upsampler 'deconf'. Did you mean 'deconv'"):
        registry.get_upsampler_factory("deconf")


def test_get_upsampler_class_is_a_deprecated_alias_that_warns_once(monkeypatch):
    monkeypatch.setattr(registry, "_warned_class_alias", False)
    with pytest.warns(FutureWarning, match="get_upsampler_class is deprecated.*use get_upsampler_factory"):
        factory = lcb.upsamplers.get_upsampler_class("nearest_conv")
    assert factory is registry.get_upsampler_factory("nearest_conv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert registry.get_upsampler_class("deconv") is registry.get_upsampler_factory("deconv")


def test_fused_bilinear_rejects_other_scales_but_reference_accepts_them():
    with pytest.raises(ValueError, match="fused bilinear path is for scale=2; got scale=3"):
        lcb.create_upsampler("bilinear_conv", 2, 2, scale=3, impl="fused")
    layer = lcb.create_upsampler("bilinear_conv", 2, 2, scale=3)
    assert layer(torch.zeros(1, 2, 5, 4)).shape == (1, 2, 15, 12)


def test_spec_broadcasts_one_name_to_every_stage():
    assert lcb.parse_upsampler_spec("deconv", 4) == ["deconv"] * 4


def test_spec_accepts_comma_lists_with_spaces_and_sequences():
    assert lcb.parse_upsampler_spec("nearest_conv, nearest_conv ,deconv_k3", 3) == [
        "nearest_conv",
        "nearest_conv",
        "deconv_k3",
    ]
    assert lcb.parse_upsampler_spec(("deconv", "pixel_shuffle"), 2) == ["deconv", "pixel_shuffle"]


def test_spec_with_wrong_stage_count_says_both_counts():
    with pytest.raises(ValueError, match="names 2 stages but the model has 3"):
        lcb.parse_upsampler_spec("deconv,deconv", 3)


@pytest.mark.parametrize("spec", ["deconv,,deconv", "", " "])
def test_spec_with_empty_names_is_rejected(spec):
    with pytest.raises(ValueError, match=r"^spec must be upsampler names separated by commas, none of them empty; "):
        lcb.parse_upsampler_spec(spec, 3)


def test_spec_with_unknown_name_suggests_closest():
    with pytest.raises(ValueError, match="Did you mean 'deconv_k3'"):
        lcb.parse_upsampler_spec("deconv,deconv_k4", 2)


def test_spec_rejects_bad_stage_count_and_type():
    with pytest.raises(ValueError, match="num_stages must be a positive integer; got 0"):
        lcb.parse_upsampler_spec("deconv", 0)
    with pytest.raises(TypeError, match=r"^spec must be a string or a list of names; got 3\.$"):
        lcb.parse_upsampler_spec(3, 2)


def _install_plugin(tmp_path, monkeypatch, entry_points: str, module_source: str) -> None:
    """A real, minimal installed distribution: a module plus a *.dist-info with entry points."""
    (tmp_path / "lcb_test_plugin.py").write_text(textwrap.dedent(module_source))
    dist_info = tmp_path / "lcb_test_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: lcb-test-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lcb_test_plugin", raising=False)
    registry._entry_points_loaded = False


PLUGIN_SOURCE = """
    import torch.nn.functional as F
    from torch import nn

    class NearestOnly(nn.Module):
        def __init__(self, in_channels, out_channels, *, scale=2):
            super().__init__()
            self.proj = nn.Conv2d(in_channels, out_channels, 1)
            self.scale = scale

        def forward(self, x):
            return F.interpolate(self.proj(x), scale_factor=self.scale)
"""


def test_entry_point_plugin_is_listed_and_created(tmp_path, monkeypatch, clean_registry):
    _install_plugin(
        tmp_path,
        monkeypatch,
        "[lightning_checkerboard.upsamplers]\nplugin_nearest = lcb_test_plugin:NearestOnly\n",
        PLUGIN_SOURCE,
    )
    assert "plugin_nearest" in lcb.list_upsamplers()
    layer = lcb.create_upsampler("plugin_nearest", 3, 5)
    assert type(layer).__module__ == "lcb_test_plugin"
    assert layer(torch.zeros(2, 3, 4, 4)).shape == (2, 5, 8, 8)


def test_entry_point_module_registers_through_the_decorator(tmp_path, monkeypatch, clean_registry):
    source = PLUGIN_SOURCE + """
    from lightning_checkerboard import register_upsampler
    register_upsampler("plugin_by_decorator")(NearestOnly)
    """
    _install_plugin(
        tmp_path, monkeypatch, "[lightning_checkerboard.upsamplers]\nplugin_by_decorator = lcb_test_plugin\n", source
    )
    assert lcb.list_upsamplers("plugin_*") == ["plugin_by_decorator"]


def test_broken_plugin_warns_and_leaves_the_registry_usable(tmp_path, monkeypatch, clean_registry):
    _install_plugin(
        tmp_path,
        monkeypatch,
        "[lightning_checkerboard.upsamplers]\nplugin_broken = lcb_test_plugin:DoesNotExist\n",
        PLUGIN_SOURCE,
    )
    with pytest.warns(RuntimeWarning, match="Skipping upsampler plugin 'plugin_broken'"):
        names = lcb.list_upsamplers()
    assert "plugin_broken" not in names and "deconv" in names


def test_the_wandb_sweep_covers_every_registered_upsampler_at_the_grid_budget():
    """``recipes/sweep.yaml`` runs the committed GAN grid on many machines: same layers, same budget."""
    from pathlib import Path

    import yaml

    from _recipes import load_recipe

    root = Path(__file__).resolve().parents[1]
    sweep = yaml.safe_load((root / "recipes" / "sweep.yaml").read_text(encoding="utf-8"))
    parameters = sweep["parameters"]
    assert parameters["upsampler"]["values"] == lcb.list_upsamplers()
    budget = load_recipe("run_grid").BUDGETS["gan"]
    fixed = dict(zip(budget[0::2], budget[1::2]))
    assert {f"--{name}": str(spec["value"]) for name, spec in parameters.items()
            if "value" in spec and name != "logger"} == fixed
