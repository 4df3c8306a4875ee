"""DCGAN generator and discriminator built from registry upsamplers."""

from __future__ import annotations

import pytest
import torch

from lightning_checkerboard.models import DCGANDiscriminator, DCGANGenerator, num_stages_for


@pytest.mark.parametrize(("size", "stages"), [(32, 3), (64, 4), (128, 5)])
def test_generator_makes_the_requested_size_with_one_upsampler_per_stage(size, stages):
    gen = DCGANGenerator("nearest_conv", image_size=size, base_channels=8)
    assert gen.stage_names == ["nearest_conv"] * stages
    out = gen(torch.randn(2, gen.latent_dim))
    assert out.shape == (2, 3, size, size)
    assert out.abs().max() <= 1


def test_generator_takes_one_name_per_stage():
    gen = DCGANGenerator("nearest_conv,nearest_conv,deconv_k3", image_size=32, base_channels=8)
    kinds = [type(stage[0]).__name__ for stage in gen.stages]
    assert kinds == ["ResizeConvUpsample", "ResizeConvUpsample", "DeconvUpsample"]


@pytest.mark.parametrize("size", [48, 0, 100, 512, True])
def test_generator_rejects_sizes_it_cannot_make(size):
    with pytest.raises(ValueError, match=rf"^image_size must be one of 8, 16, 32, 64, 128, 256; got {size}\.$"):
        DCGANGenerator("deconv", image_size=size)


def test_generator_rejects_a_stage_list_of_the_wrong_length():
    with pytest.raises(ValueError, match="names 2 stages but the model has 3"):
        DCGANGenerator("deconv,deconv", image_size=32)


def test_generator_rejects_unknown_upsampler():
    with pytest.raises(ValueError, match="Unknown upsampler 'nearst_conv'. Did you mean 'nearest_conv'"):
        DCGANGenerator("nearst_conv", image_size=32)


def test_icnr_survives_the_dcgan_initialisation():
    gen = DCGANGenerator("pixel_shuffle_icnr", image_size=16, base_channels=8)
    weight = gen.stages[0][0].conv.weight.detach()
    # ICNR: the four sub-kernels of every output channel are equal.
    groups = weight.view(-1, 4, *weight.shape[1:])
    assert torch.equal(groups, groups[:, :1].expand_as(groups))
    assert 0.005 < float(weight.std()) < 0.05  # drawn from DCGAN's N(0, 0.02), not PyTorch's default


def test_grey_generator_and_reflect_padding_option():
    gen = DCGANGenerator("bilinear_conv", image_size=16, channels=1, base_channels=8,
                         upsampler_options={"padding": "reflect"})
    assert gen(torch.randn(3, 100)).shape == (3, 1, 16, 16)
    assert all(stage[0].padding == "reflect" for stage in gen.stages)


@pytest.mark.parametrize("first_stride", [1, 2])
@pytest.mark.parametrize("size", [32, 64])
def test_discriminator_outputs_one_logit_per_image(first_stride, size):
    disc = DCGANDiscriminator(image_size=size, base_channels=8, first_stride=first_stride)
    assert disc(torch.randn(3, 3, size, size)).shape == (3,)
    first = disc.net[0]
    assert first.stride == (first_stride, first_stride)


def test_discriminator_errors_are_named():
    for stride in (3, True):
        with pytest.raises(ValueError, match=rf"^first_stride must be an integer in \[1, 2\]; got {stride}\.$"):
            DCGANDiscriminator(first_stride=stride)
    with pytest.raises(ValueError, match="^norm must be one of 'batch', 'spectral', 'none'; got 'layer'.$"):
        DCGANDiscriminator(norm="layer")
    disc = DCGANDiscriminator(image_size=32, base_channels=8)
    with pytest.raises(ValueError, match=r"expects images of shape \(B, 3, 32, 32\); got \(1, 3, 64, 64\)"):
        disc(torch.randn(1, 3, 64, 64))


def test_num_stages_for():
    assert [num_stages_for(s) for s in (8, 32, 256)] == [1, 3, 6]


def test_plain_pixel_shuffle_keeps_independent_sub_kernels():
    gen = DCGANGenerator("pixel_shuffle", image_size=16, base_channels=8)
    weight = gen.stages[0][0].conv.weight.detach()
    groups = weight.view(-1, 4, *weight.shape[1:])
    assert not torch.equal(groups, groups[:, :1].expand_as(groups))
