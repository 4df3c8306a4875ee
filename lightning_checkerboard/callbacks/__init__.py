"""Lightning callbacks: sample grids, artifact metrics, FID and the run's result record.

They work with any Lightning logger (W&B, CSV, TensorBoard, none) and write files on rank zero.
What the measuring callbacks need from a LightningModule is written in
:mod:`lightning_checkerboard.callbacks.protocols`; any module can instead hand them a ``sample_fn``.
"""

from lightning_checkerboard.callbacks.artifacts import ArtifactMetrics
from lightning_checkerboard.callbacks.checkpoint import RunCheckpoint
from lightning_checkerboard.callbacks.fid import FIDCallback
from lightning_checkerboard.callbacks.fidelity import FidelityMetrics, SupportsSuperResolution
from lightning_checkerboard.callbacks.heldout_loss import HeldoutLoss, SupportsLosses
from lightning_checkerboard.callbacks.protocols import (
    SampleFn,
    SupportsHeldoutImages,
    SupportsMetricSamples,
    SupportsSampleGrid,
)
from lightning_checkerboard.callbacks.progress import TrainingProgress
from lightning_checkerboard.callbacks.reconstruction import ReconstructionMetrics, SupportsReconstruction
from lightning_checkerboard.callbacks.recorder import ResultRecorder
from lightning_checkerboard.callbacks.samples import SampleGrid

__all__ = [
    "ArtifactMetrics",
    "FIDCallback",
    "FidelityMetrics",
    "HeldoutLoss",
    "ResultRecorder",
    "ReconstructionMetrics",
    "RunCheckpoint",
    "SampleFn",
    "SampleGrid",
    "SupportsHeldoutImages",
    "SupportsLosses",
    "SupportsMetricSamples",
    "SupportsReconstruction",
    "SupportsSampleGrid",
    "SupportsSuperResolution",
    "TrainingProgress",
]
