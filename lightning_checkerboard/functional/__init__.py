"""Pure tensor math (torch only): resize-convolution, overlap analysis, spectra, scores and SWD.

One module per idea: ``spectrum`` (windowed and radial power spectra), ``checkerboard`` (the
checkerboard score), ``checkerboard_noise`` (its noise model: shared content, copies, equal-phase
cells), ``checkerboard_diagnostics`` (its per-period diagnostics and upper bound) and ``periodic``
(the same reading at any integer period),
``spectral_distance``, ``swd``, ``gradients``, ``overlap``, ``resize_conv`` and ``plots``. Each metric
class in :mod:`lightning_checkerboard.metrics` shares its module's private update/compute pair with the
function exported here. Plots (``plot_spectra``, ``plot_period_pnr``) import matplotlib only when they
draw.
"""

from lightning_checkerboard.functional.checkerboard import (
    CheckerboardStatistics,
    checkerboard_energy,
    checkerboard_score,
    checkerboard_score_from_sums,
    checkerboard_statistics,
    design_effect,
    grid_bin_periods,
    near_duplicate_correlation,
)
from lightning_checkerboard.functional.checkerboard_diagnostics import (
    checkerboard_upper_bound_from_sums,
    checkerboard_upper_energy,
    contrast_free_ratio,
    peak_to_reference_db,
    period_amplitudes,
    reference_bend,
)
from lightning_checkerboard.functional.gradients import (
    discriminator_input_gradient,
    gradient_energy,
    normalize_gradient,
    phase_energy_ratio,
)
from lightning_checkerboard.functional.overlap import overlap_map, overlap_ratio, upsampler_matrix
from lightning_checkerboard.functional.periodic import (
    periodic_pattern_periods,
    periodic_pattern_reading,
    periodic_pattern_reading_from_sums,
    periodic_pattern_statistics,
)
from lightning_checkerboard.functional.plots import figure_to_array, plot_period_pnr, plot_spectra
from lightning_checkerboard.functional.resize_conv import (
    bilinear_conv2d,
    nearest_conv2d,
    resize_conv2d_reference,
    resize_filter,
    tied_kernel_matrix,
    tied_transposed_kernel,
)
from lightning_checkerboard.functional.spectral_distance import spectral_distance
from lightning_checkerboard.functional.spectrum import (
    azimuthal_average,
    hann_window_2d,
    radial_power_spectrum,
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
    "design_effect",
    "discriminator_input_gradient",
    "figure_to_array",
    "gradient_energy",
    "grid_bin_periods",
    "hann_window_2d",
    "laplacian_pyramid",
    "near_duplicate_correlation",
    "nearest_conv2d",
    "normalize_gradient",
    "overlap_map",
    "overlap_ratio",
    "peak_to_reference_db",
    "period_amplitudes",
    "periodic_pattern_periods",
    "periodic_pattern_reading",
    "periodic_pattern_reading_from_sums",
    "periodic_pattern_statistics",
    "phase_energy_ratio",
    "plot_period_pnr",
    "plot_spectra",
    "radial_power_spectrum",
    "reference_bend",
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
