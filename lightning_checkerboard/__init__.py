"""lightning-checkerboard: swappable, measurable upsampling layers for image generators.

Example:
    >>> import torch
    >>> from lightning_checkerboard import create_upsampler, list_upsamplers
    >>> "nearest_conv" in list_upsamplers()
    True
    >>> create_upsampler("nearest_conv", 8, 4)(torch.zeros(1, 8, 4, 4)).shape
    torch.Size([1, 4, 8, 8])
"""

from lightning_checkerboard.adapt import AuditReport, audit, fuse_resize_conv, replace_upsamplers
from lightning_checkerboard.upsamplers import (
    create_upsampler,
    list_upsamplers,
    parse_upsampler_spec,
    register_upsampler,
)

__version__ = "0.1.0"

__all__ = [
    "AuditReport",
    "__version__",
    "audit",
    "create_upsampler",
    "fuse_resize_conv",
    "list_upsamplers",
    "parse_upsampler_spec",
    "register_upsampler",
    "replace_upsamplers",
]
