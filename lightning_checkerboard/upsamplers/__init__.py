"""Upsampling layers and the registry that names them.

Importing this package registers the built-in layers; third-party layers arrive through the
``lightning_checkerboard.upsamplers`` entry-point group the first time the registry is read.
"""

from lightning_checkerboard.upsamplers.content_aware import (
    BilinearAdditiveUpsample,
    CarafeUpsample,
    DySampleUpsample,
)
from lightning_checkerboard.upsamplers.layers import (
    DeconvBlurUpsample,
    DeconvUpsample,
    PixelShuffleUpsample,
    ResizeConvUpsample,
    Upsampler,
)
from lightning_checkerboard.upsamplers.registry import (
    ENTRY_POINT_GROUP,
    create_upsampler,
    get_upsampler_class,
    get_upsampler_factory,
    is_upsampler,
    list_upsamplers,
    parse_upsampler_spec,
    register_upsampler,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "BilinearAdditiveUpsample",
    "CarafeUpsample",
    "DeconvBlurUpsample",
    "DeconvUpsample",
    "DySampleUpsample",
    "PixelShuffleUpsample",
    "ResizeConvUpsample",
    "Upsampler",
    "create_upsampler",
    "get_upsampler_class",
    "get_upsampler_factory",
    "is_upsampler",
    "list_upsamplers",
    "parse_upsampler_spec",
    "register_upsampler",
]
