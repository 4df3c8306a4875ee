"""fuse_resize_conv on diffusers models: AutoencoderKL decoders and UNet2DModel, outputs and keys kept."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DModel
from diffusers.models.upsampling import Upsample2D

from lightning_checkerboard import fuse_resize_conv


def _small_vae() -> AutoencoderKL:
    torch.manual_seed(0)
    return AutoencoderKL(
        block_out_channels=(8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
    ).eval()


def _small_unet() -> UNet2DModel:
    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=16,
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        norm_num_groups=4,
    ).eval()


def test_autoencoder_kl_decoder_fuses_every_upsampler_exactly():
    vae = _small_vae()
    fused = fuse_resize_conv(vae)
    assert [(s.path, s.pattern) for s in fused.fused_sites] == [
        (f"decoder.up_blocks.{i}.upsamplers.0", "diffusers.Upsample2D") for i in (0, 1)
    ]
    z = torch.randn(2, 4, 4, 4)
    outputs, grads = [], []
    for model in (vae, fused):
        out = model.decode(z).sample
        out.square().mean().backward()
        outputs.append(out.detach())
        grads.append(model.decoder.up_blocks[0].upsamplers[0].conv.weight.grad)
    assert outputs[1].shape == (2, 3, 16, 16)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-5 * outputs[0].abs().max().item())
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-5 * grads[0].abs().max().item())
    assert fused.state_dict().keys() == vae.state_dict().keys()
    fused.load_state_dict(vae.state_dict(), strict=True)
    vae.load_state_dict(fused.state_dict(), strict=True)


def test_unet2d_model_fuses_and_matches():
    unet = _small_unet()
    fused = fuse_resize_conv(unet)
    assert [s.path for s in fused.fused_sites] == ["up_blocks.0.upsamplers.0"]
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([3, 500])
    with torch.no_grad():
        expected, actual = unet(x, t).sample, fused(x, t).sample
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())
    fused.load_state_dict(unet.state_dict(), strict=True)


def test_upsample2d_with_an_output_size_other_than_double_falls_back_to_its_own_forward():
    torch.manual_seed(0)
    block = Upsample2D(4, use_conv=True)
    fused = fuse_resize_conv(block)
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(fused(x, output_size=(11, 9)), block(x, output_size=(11, 9)))
    torch.testing.assert_close(fused(x, output_size=(10, 10)), block(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "block",
    [Upsample2D(4, use_conv=False), Upsample2D(4, use_conv_transpose=True), Upsample2D(4, use_conv=True, kernel_size=5,
                                                                                         padding=2)],
    ids=["no-conv", "conv-transpose", "kernel5"],
)
def test_other_upsample2d_configurations_are_left_alone(block):
    with pytest.warns(UserWarning, match="the copy is unchanged"):
        fused = fuse_resize_conv(block)
    assert "forward" not in vars(fused)


def test_audit_lists_upsample2d_sites_and_replace_refuses_them_by_name():
    from lightning_checkerboard import audit, replace_upsamplers

    vae = _small_vae()
    rows = audit(vae.decoder, torch.randn(1, 4, 8, 8)).rows
    assert [(r.path, r.kind, r.fusable, r.output_shape) for r in rows] == [
        ("up_blocks.0.upsamplers.0", "resize_conv", "yes", (1, 16, 16, 16)),
        ("up_blocks.1.upsamplers.0", "resize_conv", "yes", (1, 16, 32, 32)),
    ]
    assert rows[0].score == 0.0
    assert [r.fusable for r in audit(fuse_resize_conv(vae).decoder, torch.randn(1, 4, 8, 8)).rows] == ["fused"] * 2
    with pytest.raises(ValueError, match=r"^cannot replace the upsampling site 'decoder.up_blocks.0.upsamplers.0' "
                                         r"\(resize_conv\): diffusers' Upsample2D is called with an output_size"):
        replace_upsamplers(vae, "deconv")
