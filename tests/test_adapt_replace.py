"""replace_upsamplers and the site finder: every site kind, per-site globs, sizes that cannot be matched."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_checkerboard import replace_upsamplers
from lightning_checkerboard.adapt import find_upsampling_sites
from lightning_checkerboard.upsamplers.layers import DeconvUpsample, PixelShuffleUpsample, ResizeConvUpsample


class Generator(nn.Module):
    """A 3-stage transposed-convolution generator: 4² → 32²."""

    def __init__(self) -> None:
        super().__init__()
        self.project = nn.ConvTranspose2d(16, 32, 4, 1, 0)  # stride 1: not an upsampling site
        self.blocks = nn.Sequential(
            nn.Sequential(nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.BatchNorm2d(16), nn.ReLU()),
            nn.Sequential(nn.ConvTranspose2d(16, 8, 4, 2, 1), nn.BatchNorm2d(8), nn.ReLU()),
            nn.Sequential(nn.ConvTranspose2d(8, 3, 4, 2, 1), nn.Tanh()),
        )

    def forward(self, z):
        return self.blocks(self.project(z))


def test_three_stage_transposed_conv_generator_gets_registry_layers():
    gen = Generator()
    swapped = replace_upsamplers(gen, "nearest_conv", padding="reflect")
    assert swapped.replaced_sites == tuple((f"blocks.{i}.0", "nearest_conv") for i in range(3))
    layers = [swapped.blocks[i][0] for i in range(3)]
    assert all(isinstance(layer, ResizeConvUpsample) and layer.padding == "reflect" for layer in layers)
    assert [(layer.in_channels, layer.out_channels) for layer in layers] == [(32, 16), (16, 8), (8, 3)]
    assert type(swapped.project) is nn.ConvTranspose2d
    z = torch.randn(2, 16, 1, 1)
    assert swapped(z).shape == gen(z).shape == (2, 3, 32, 32)
    assert isinstance(gen.blocks[0][0], nn.ConvTranspose2d)  # the input is untouched


def test_glob_mapping_chooses_per_site_and_keeps_unmatched_sites():
    gen = Generator()
    swapped = replace_upsamplers(gen, {"blocks.2.*": "deconv_k3", "blocks.0.*": "pixel_shuffle"})
    assert swapped.replaced_sites == (("blocks.0.0", "pixel_shuffle"), ("blocks.2.0", "deconv_k3"))
    assert isinstance(swapped.blocks[0][0], PixelShuffleUpsample)
    assert type(swapped.blocks[1][0]) is nn.ConvTranspose2d
    assert isinstance(swapped.blocks[2][0], DeconvUpsample) and swapped.blocks[2][0].conv.kernel_size == (3, 3)
    assert swapped(torch.randn(1, 16, 1, 1)).shape == (1, 3, 32, 32)


def test_first_matching_glob_wins():
    swapped = replace_upsamplers(Generator(), {"blocks.1.0": "deconv", "blocks.*": "nearest_conv"})
    assert [name for _, name in swapped.replaced_sites] == ["nearest_conv", "deconv", "nearest_conv"]


def test_pixel_shuffle_and_upsample_conv_sites_are_replaced_with_the_same_output_size():
    model = nn.Sequential(
        nn.Conv2d(4, 8 * 4, 3, padding=1), nn.PixelShuffle(2), nn.ReLU(),
        nn.Upsample(scale_factor=2, mode="bilinear"), nn.ReflectionPad2d(2), nn.Conv2d(8, 5, 5),
        nn.Upsample(scale_factor=3), nn.Conv2d(5, 2, 1),
    )
    sites = find_upsampling_sites(model)
    assert [(s.path, s.kind, s.in_channels, s.out_channels, s.stride) for s in sites] == [
        ("0", "pixel_shuffle", 4, 8, 2), ("5", "resize_conv", 8, 5, 2), ("7", "resize_conv", 5, 2, 3)]
    swapped = replace_upsamplers(model, "deconv")
    assert [type(m).__name__ for m in swapped] == [
        "DeconvUpsample", "Identity", "ReLU", "Identity", "Identity", "DeconvUpsample", "Identity", "DeconvUpsample"]
    x = torch.randn(1, 4, 3, 5)
    assert swapped(x).shape == model(x).shape == (1, 2, 36, 60)
    assert swapped[7].scale == 3


def test_package_layers_are_sites_too():
    model = nn.Sequential(ResizeConvUpsample(4, 4), nn.ReLU(), DeconvUpsample(4, 2))
    swapped = replace_upsamplers(model, "pixel_shuffle_icnr")
    assert [type(m).__name__ for m in swapped] == ["PixelShuffleUpsample", "ReLU", "PixelShuffleUpsample"]


def test_new_layers_follow_the_sites_device_and_dtype():
    model = nn.Sequential(nn.ConvTranspose2d(4, 2, 4, 2, 1)).double()
    swapped = replace_upsamplers(model, "nearest_conv")
    assert swapped[0].conv.weight.dtype == torch.float64
    assert swapped(torch.randn(1, 4, 3, 3, dtype=torch.float64)).shape == (1, 2, 6, 6)


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(4, 2, 3, 2, 0)), "1"),  # 2n + 1
        (nn.Sequential(nn.Conv2d(4, 16, 3), nn.PixelShuffle(2)), "0"),  # the conv shrinks the map
        (nn.Sequential(nn.Upsample(size=(8, 8)), nn.Conv2d(4, 4, 3, padding=1)), "1"),
        (nn.Sequential(nn.Upsample(scale_factor=1.5), nn.Conv2d(4, 4, 3, padding=1)), "1"),
        (nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(4, 4, 3)), "1"),
    ],
    ids=["transposed-2n+1", "shuffle-shrinking-conv", "upsample-size", "upsample-1.5", "unpadded-conv"],
)
def test_a_site_whose_size_cannot_be_matched_is_a_one_line_error_naming_it(model, path):
    with pytest.raises(ValueError, match=rf"^cannot replace the upsampling site '{path}' \(") as info:
        replace_upsamplers(model, "deconv")
    assert "\n" not in str(info.value) and str(info.value).endswith("strict=False keeps such sites (with a warning), "
                                                                    "or choose sites by glob.")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        kept = replace_upsamplers(model, "deconv", strict=False)
    assert [path for path, _ in kept.skipped_sites] == [path] and kept.replaced_sites == ()
    messages = [str(w.message) for w in record]
    assert messages[0].startswith(f"replace_upsamplers kept 1 site(s) of Sequential:\n{path}: ")
    assert messages[1] == "replace_upsamplers replaced nothing in Sequential."


def test_an_unmatched_size_outside_the_globs_is_not_an_error():
    model = nn.Sequential(nn.ConvTranspose2d(4, 2, 3, 2, 0), nn.ConvTranspose2d(2, 2, 4, 2, 1))
    assert replace_upsamplers(model, {"1": "nearest_conv"}).replaced_sites == (("1", "nearest_conv"),)


def test_bad_arguments():
    with pytest.raises(TypeError, match="upsampler must be a registered name or a mapping"):
        replace_upsamplers(Generator(), ["deconv"])
    with pytest.raises(TypeError, match="model must be a torch.nn.Module; got int"):
        replace_upsamplers(3, "deconv")
    with pytest.raises(ValueError, match="nearest_conv"):  # the registry names the closest match
        replace_upsamplers(Generator(), "nearest_cnv")


def test_nothing_replaced_warns():
    with pytest.warns(UserWarning, match=r"matches the globs \['decoder\.\*'\]"):
        replace_upsamplers(Generator(), {"decoder.*": "deconv"})
    with pytest.warns(UserWarning, match="no upsampling site was found"):
        replace_upsamplers(nn.Linear(2, 2), "deconv")


def test_options_per_target_override_the_common_ones():
    gen = Generator()
    swapped = replace_upsamplers(gen, {"blocks.0.*": ("nearest_conv", {"padding": "zeros"}), "*": "nearest_conv"},
                                 padding="reflect")
    assert [swapped.blocks[i][0].padding for i in range(3)] == ["zeros", "reflect", "reflect"]
    with pytest.raises(TypeError, match=r"upsampler\['\*'\] must be a registered name or a \(name, options dict\) pair"):
        replace_upsamplers(gen, {"*": ("nearest_conv", "reflect")})


def test_no_bias_is_added_unless_the_site_had_one():
    model = nn.Sequential(nn.ConvTranspose2d(4, 4, 4, 2, 1, bias=False), nn.BatchNorm2d(4),
                          nn.ConvTranspose2d(4, 2, 4, 2, 1))
    swapped = replace_upsamplers(model, "nearest_conv")
    assert swapped[0].conv.bias is None and swapped[2].conv.bias is not None
    forced = replace_upsamplers(model, "nearest_conv", bias=True)
    assert forced[0].conv.bias is not None


def test_align_corners_resize_is_replaced_with_its_stride():
    model = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                          nn.Conv2d(4, 2, 3, padding=1, bias=False))
    (site,) = find_upsampling_sites(model)
    assert (site.kind, site.stride, site.fusable, site.replaceable, site.bias) == ("resize_conv", 2, "no", True, False)
    swapped = replace_upsamplers(model, "bilinear_conv")
    assert [type(m).__name__ for m in swapped] == ["Identity", "ResizeConvUpsample"]
    assert swapped[1].conv.bias is None
    assert swapped(torch.randn(1, 4, 5, 5)).shape == (1, 2, 10, 10)


def test_a_lone_resize_is_replaced_when_an_input_gives_its_channels():
    from _layouts import UNetLike

    model, x = UNetLike(), torch.randn(1, 3, 16, 16)
    with pytest.raises(ValueError, match="'up1.up' \\(resize\\): its channels are unknown without an example input"):
        replace_upsamplers(model, "nearest_conv")
    swapped = replace_upsamplers(model, "nearest_conv", x)
    assert swapped.replaced_sites == (("up1.up", "nearest_conv"),)
    layer = swapped.up1.up
    assert (layer.in_channels, layer.out_channels, layer.conv.bias) == (8, 8, None)
    assert swapped(x).shape == model(x).shape
    with pytest.raises(TypeError, match="example_input must be a tensor, a non-empty tuple"):
        replace_upsamplers(model, "nearest_conv", "x")


def test_a_call_in_an_untraceable_forward_is_kept_with_its_reason():
    from _layouts import ShapeBranchSR

    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"^cannot replace the upsampling site 'conv_up1' \(resize_conv\): its "
                                         r"interpolate call\(s\) are in the forward of the model, which cannot be "
                                         r"rewritten: torch.fx cannot trace its forward: TraceError"):
        replace_upsamplers(ShapeBranchSR(), "nearest_conv", x)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        kept = replace_upsamplers(ShapeBranchSR(), "nearest_conv", x, strict=False)
    assert [path for path, _ in kept.skipped_sites] == ["conv_up1"]
    assert [str(w.message).splitlines()[0] for w in record] == [
        "replace_upsamplers kept 1 site(s) of ShapeBranchSR:", "replace_upsamplers replaced nothing in ShapeBranchSR."]


def test_a_model_whose_forward_was_rewritten_refuses_pickling_with_advice():
    """TransformerNet's block calls F.interpolate in forward: replacing it rewrites that forward on the
    instance, which a pickle would silently drop (the class's forward would resize again)."""
    import pickle

    from _layouts import TransformerNetLike

    replaced = replace_upsamplers(TransformerNetLike(), "nearest_conv")
    x = torch.randn(1, 3, 16, 16)
    assert replaced(x).shape == (1, 3, 16, 16)
    with pytest.raises(pickle.PicklingError,
                       match=r"UpsampleConvLayer runs a forward rewritten by replace_upsamplers.*"
                             r"state_dict\(\).*calling replace_upsamplers on it again"):
        pickle.dumps(replaced)
