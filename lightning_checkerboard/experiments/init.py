"""Untrained generators: the article's claim that checkerboards are there before any training.

:func:`init_configs` lists the generator stacks the article compares, :func:`untrained_samples` paints
with a freshly initialised DCGAN generator and :func:`init_diagnostics` scores what it paints.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_checkerboard._validation import check_int
from lightning_checkerboard.experiments._diagnostics import checkerboard_diagnostics
from lightning_checkerboard.models.dcgan import DCGANGenerator, num_stages_for

__all__ = ["ARTIFACT_FREE_INIT", "MODERN_LAYERS", "init_configs", "init_diagnostics", "untrained_samples"]

#: Single-layer upsamplers whose untrained stacks the article (and ICNR) predict to be pattern-free.
ARTIFACT_FREE_INIT = ("nearest_conv", "bilinear_conv", "pixel_shuffle_icnr", "deconv_blur")
#: Layers newer than the article, probed the same way (their papers make no claim about artifacts).
MODERN_LAYERS = ("dysample", "carafe", "bilinear_additive")


def init_configs(stages: int) -> dict[str, str]:
    """The article's generator configurations, label → upsampler spec for a ``stages``-stage generator.

    Uniform stacks of every layer the article discusses, plus the mixed stacks of its figure
    ("deconv only in the last layer(s)"), which keep ``nearest_conv`` in the earlier stages, then
    uniform stacks of the newer :data:`MODERN_LAYERS`.

    Args:
        stages: stride-2 stages of the generator (3 for a DCGAN at 32²); at least 3, so that "the last
            two stages" is not the whole stack.

    Raises:
        ValueError: fewer than three stages.

    Example:
        >>> init_configs(3)["deconv_k3 in the last stage"]
        'nearest_conv,nearest_conv,deconv_k3'
    """
    check_int(stages, "stages", minimum=3)

    def last(count: int) -> str:
        return ",".join(["nearest_conv"] * (stages - count) + ["deconv_k3"] * count)

    return {
        "all deconv_k3": "deconv_k3",
        "all deconv": "deconv",
        "deconv_k3 in the last two stages": last(2),
        "deconv_k3 in the last stage": last(1),
        "all nearest_conv": "nearest_conv",
        "all bilinear_conv": "bilinear_conv",
        "all pixel_shuffle": "pixel_shuffle",
        "all pixel_shuffle_icnr": "pixel_shuffle_icnr",
        "all deconv_blur": "deconv_blur",
        **{f"all {name}": name for name in MODERN_LAYERS},
    }


@torch.no_grad()
def untrained_samples(
    upsampler: str,
    *,
    seed: int,
    num_samples: int = 256,
    image_size: int = 32,
    base_channels: int = 32,
) -> Tensor:
    """Images in [0, 1] from a freshly initialised DCGAN generator, BatchNorm in training mode.

    Training mode is what a generator is in when it first paints: its BatchNorm normalises with the
    batch's own statistics, so the output has full contrast (eval mode's unit running variance would
    shrink it and, with it, the absolute score).

    Args:
        upsampler: one registry name for every stage, or one per stage (comma-separated).
        seed: seeds the weights and the noise.
        num_samples: images to generate (one batch).
        image_size: generator output size, 8 … 256.
        base_channels: the generator's ``ngf``.

    Returns:
        ``(num_samples, 3, image_size, image_size)`` float32 in [0, 1].
    """
    torch.manual_seed(seed)
    gen = DCGANGenerator(upsampler, image_size=image_size, base_channels=base_channels).train()
    return (gen(torch.randn(num_samples, gen.latent_dim)) + 1) / 2



def init_diagnostics(upsampler: str, *, seed: int, num_samples: int = 256, image_size: int = 32,
                     base_channels: int = 32) -> dict[str, float]:
    """Checkerboard diagnostics of one untrained generator: score, ratio, amplitude and PNR per period.

    Measures every period the generator's stages can leave (``levels = stages``). Arguments as for
    :func:`untrained_samples`.

    Example:
        >>> d = init_diagnostics("nearest_conv", seed=0, num_samples=32, image_size=16, base_channels=8)
        >>> d["score"], sorted(d)[:3]
        (0.0, ['amplitude_period_2', 'amplitude_period_4', 'effective_images'])
    """
    images = untrained_samples(upsampler, seed=seed, num_samples=num_samples, image_size=image_size,
                               base_channels=base_channels)
    return checkerboard_diagnostics(images, num_stages_for(image_size))
