"""The measurements behind the article's claims, shared by the recipes that report them and the tests that pin them.

Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts" (Distill, 2016) make three kinds
of claim, each measured here with the project's own tools, one module each:

- :mod:`~lightning_checkerboard.experiments.init`: untrained generators already show checkerboards
  when they upsample with transposed (or sub-pixel) convolutions, and not with resize-convolutions
  (:func:`init_diagnostics` over :func:`init_configs`);
- :mod:`~lightning_checkerboard.experiments.overlap`: uneven overlap comes from kernels not divisible
  by the stride and compounds through stacks (:func:`overlap_ratios`);
- :mod:`~lightning_checkerboard.experiments.gradients`: strided convolutions put checkerboards into
  gradients (:func:`gradient_diagnostics` of a discriminator's input gradient on real images, signed
  or as per-pixel energy, for the :data:`GRADIENT_CONFIGS` of its first layer);
- :mod:`~lightning_checkerboard.experiments.sampling` (beyond the article): whether DySample's learned
  sampling grid stays even across sub-pixel phases (:func:`sampling_phases`,
  :func:`model_sampling_phases`).

``recipes/reports/init_probe.py``, ``gradient_probe.py``, ``overlap_figures.py`` and ``article_report.py``
print these numbers; ``tests/test_article_claims.py`` asserts them. The
gradient math they use lives in :mod:`lightning_checkerboard.functional.gradients` and the report
formatting in :mod:`lightning_checkerboard.reporting`; both are importable from here as well. Only
torch and the package's own models and metrics are used (no Lightning).
"""

from lightning_checkerboard.experiments._diagnostics import checkerboard_diagnostics
from lightning_checkerboard.experiments.gradients import (
    GRADIENT_CONFIGS,
    GRADIENT_QUANTITIES,
    gradient_diagnostics,
    gradient_probe_diagnostics,
    untrained_discriminator,
    untrained_gradient_diagnostics,
)
from lightning_checkerboard.experiments.init import (
    ARTIFACT_FREE_INIT,
    init_configs,
    init_diagnostics,
    untrained_samples,
)
from lightning_checkerboard.experiments.overlap import overlap_ratios
from lightning_checkerboard.experiments.sampling import model_sampling_phases, sampling_phases
from lightning_checkerboard.functional.gradients import discriminator_input_gradient, gradient_energy, phase_energy_ratio
from lightning_checkerboard.reporting import far_above, format_mean_std, mean_std, provenance, summarize, summary_cells

__all__ = [
    "ARTIFACT_FREE_INIT",
    "GRADIENT_CONFIGS",
    "GRADIENT_QUANTITIES",
    "checkerboard_diagnostics",
    "discriminator_input_gradient",
    "far_above",
    "format_mean_std",
    "gradient_diagnostics",
    "gradient_energy",
    "gradient_probe_diagnostics",
    "init_configs",
    "init_diagnostics",
    "mean_std",
    "model_sampling_phases",
    "overlap_ratios",
    "phase_energy_ratio",
    "provenance",
    "sampling_phases",
    "summarize",
    "summary_cells",
    "untrained_discriminator",
    "untrained_gradient_diagnostics",
    "untrained_samples",
]
