"""Pure tensor math (torch only): resize-convolution, overlap analysis, spectra, scores and SWD.

Plots (``plot_spectra``, ``plot_period_pnr``) import matplotlib only when they draw.
"""

from lightning_checkerboard.functional.gradients import discriminator_input_gradient
from lightning_checkerboard.functional.overlap import overlap_map, overlap_ratio, upsampler_matrix
from lightning_checkerboard.functional.plots import figure_to_array, plot_period_pnr, plot_spectra
from lightning_checkerboard.functional.resize_conv import (
    bilinear_conv2d,
    nearest_conv2d,
    resize_conv2d_reference,
    resize_filter,
    tied_kernel_matrix,
    tied_transposed_kernel,
)
from lightning_checkerboard.functional.spectral import (
    CheckerboardStatistics,
    azimuthal_average,
    checkerboard_energy,
    checkerboard_score,
    checkerboard_score_from_sums,
    checkerboard_statistics,
    checkerboard_upper_bound_from_sums,
    checkerboard_upper_energy,
    contrast_free_ratio,
    grid_bin_periods,
    hann_window_2d,
    normalize_gradient,
    peak_to_reference_db,
    period_amplitudes,
    radial_power_spectrum,
    spectral_distance,
    windowed_power_spectrum,
)
from lightning_checkerboard.functional.swd import laplacian_pyramid, sliced_wasserstein_distance, swd_num_levels

__all__ = [
    "CheckerboardStatistics",
    "azimuthal_average",
    "bilinear_conv2d",
    "checkerboard_energy",
    "checkerboard_score",
    "checkerboard_score_from_sums",
    "checkerboard_statistics",
    "checkerboard_upper_bound_from_sums",
    "checkerboard_upper_energy",
    "contrast_free_ratio",
    "discriminator_input_gradient",
    "figure_to_array",
    "grid_bin_periods",
    "hann_window_2d",
    "laplacian_pyramid",
    "nearest_conv2d",
    "normalize_gradient",
    "overlap_map",
    "overlap_ratio",
    "peak_to_reference_db",
    "period_amplitudes",
    "plot_period_pnr",
    "plot_spectra",
    "radial_power_spectrum",
    "resize_conv2d_reference",
    "resize_filter",
    "sliced_wasserstein_distance",
    "spectral_distance",
    "swd_num_levels",
    "tied_kernel_matrix",
    "tied_transposed_kernel",
    "upsampler_matrix",
    "windowed_power_spectrum",
]
