"""Bring your own model: fuse its resize-convolutions, swap its upsamplers, audit its artifacts.

Torch and the upsampler registry only (no Lightning): third-party blocks (diffusers) are recognised by
class name, so their packages stay optional.
"""

from lightning_checkerboard.adapt.audit import AuditReport, AuditRow, audit
from lightning_checkerboard.adapt.fuse import FusedSite, fuse_resize_conv
from lightning_checkerboard.adapt.layer import FusedResizeConv2d, resize_conv2d
from lightning_checkerboard.adapt.replace import replace_upsamplers
from lightning_checkerboard.adapt.sites import UpsamplingSite, find_upsampling_sites

__all__ = [
    "AuditReport",
    "AuditRow",
    "FusedResizeConv2d",
    "FusedSite",
    "UpsamplingSite",
    "audit",
    "find_upsampling_sites",
    "fuse_resize_conv",
    "replace_upsamplers",
    "resize_conv2d",
]
