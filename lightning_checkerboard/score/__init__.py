"""Score any set of images for checkerboard artifacts, whatever made them.

``python -m lightning_checkerboard.score GENERATED [--reference REAL]`` (or ``lightning-checkerboard
score``) reads a folder, glob, image file, ``.npy``/``.npz`` array or Hub split, never resamples it,
and reports the checkerboard score with its 95 % upper bound, per-period amplitude and PNR, and
against a reference the spectral distance, SWD and FID/KID. :func:`score_images` is the same in
Python.

Example:
    >>> import numpy as np, tempfile, os
    >>> from lightning_checkerboard.score import ScoreOptions, score_images
    >>> rng = np.random.default_rng(0)
    >>> smooth = rng.integers(60, 190, (16, 1, 1, 3)).astype(np.uint8).repeat(32, 1).repeat(32, 2)
    >>> checker = (np.indices((32, 32)).sum(0) % 2 * 4 - 2)[None, :, :, None]  # +-2 levels
    >>> path = os.path.join(tempfile.mkdtemp(), "images.npy")
    >>> np.save(path, (smooth + checker).astype(np.uint8))
    >>> run = score_images(path, options=ScoreOptions(device="cpu"))
    >>> run.plan.levels, round(run.measurements[0].result["checkerboard"]["score"], 2)
    (3, 2.0)
"""

from lightning_checkerboard.score.reading import ScoreError
from lightning_checkerboard.score.runner import ScoreOptions, ScoreRun, score_images

__all__ = ["ScoreError", "ScoreOptions", "ScoreRun", "score_images"]
