"""Pure tensor math (torch only): resize-convolution, overlap analysis, spectra and scores."""

from lightning_checkerboard.functional.overlap import overlap_map, overlap_ratio, upsampler_matrix
from lightning_checkerboard.functional.resize_conv import (
    bilinear_conv2d,
    nearest_conv2d,
    resize_conv2d_reference,
    resize_filter,
    tied_kernel_matrix,
    tied_transposed_kernel,
)

__all__ = [
    "bilinear_conv2d",
    "nearest_conv2d",
    "overlap_map",
    "overlap_ratio",
    "resize_conv2d_reference",
    "resize_filter",
    "tied_kernel_matrix",
    "tied_transposed_kernel",
    "upsampler_matrix",
]
