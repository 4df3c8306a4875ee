"""Stream the planned images through the metrics, a batch at a time, one group after another.

Per group: the checkerboard score of the generated images (and of the reference's, for comparison),
and against a reference the spectral distance, SWD and FID/KID/precision/recall. Memory holds one
batch of images, the metrics' states (SWD keeps patch descriptors of at most ``swd_samples`` images
per set; FID 8 KB of features per image), and for figures the ``top`` strongest images and the
mean 2-D spectra.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lightning_checkerboard.score.plan import Group, Plan
from lightning_checkerboard.score.reading import (
    Entry,
    ImageSource,
    PhotosSource,
    SkipReport,
    load_checked,
    unreadable,
)

__all__ = ["GroupFigures", "Measurement", "Strongest", "checkerboard_summary", "measure_group"]

#: Smallest side SWD's Laplacian pyramid takes.
SWD_MIN_SIDE = 16


@dataclass(order=True)
class Strongest:
    """One image among the strongest patterns: its per-image amplitude (8-bit levels) and pixels."""

    amplitude: float
    order: int
    label: str = field(compare=False)
    image: np.ndarray = field(compare=False, repr=False)


@dataclass
class GroupFigures:
    """What the figures of one group need: mean spectra and the strongest images."""

    radial: dict[str, np.ndarray] = field(default_factory=dict)
    plane: dict[str, np.ndarray] = field(default_factory=dict)
    strongest: list[Strongest] = field(default_factory=list)


@dataclass
class Measurement:
    """One group's numbers (JSON-ready) and its figure data."""

    result: dict[str, Any]
    figures: GroupFigures
    checkerboard: Any  # the group's CheckerboardScore, merged into the all-sizes score


def checkerboard_summary(metric) -> dict[str, Any]:
    """Score, 95 % bound, contrast-free ratio and per-period amplitude, bound and PNR of a CheckerboardScore."""
    values = {key: float(value) for key, value in metric.diagnostics().items()}
    periods = [
        {
            "period": 2**level,
            "amplitude": values[f"amplitude_period_{2**level}"],
            "upper": values[f"upper_period_{2**level}"],
            "pnr_db": values[f"pnr_db_period_{2**level}"],
        }
        for level in range(1, metric.levels + 1)
    ]
    return {
        "images": int(metric.num_images),
        "score": values["score"],
        "upper": values["upper"],
        "ratio": values["ratio"],
        "effective_images": values["effective_images"],
        "periods": periods,
    }


def _prepare(image: np.ndarray, height: int, width: int, channels: int) -> np.ndarray | None:
    _, have_h, have_w = image.shape
    if have_h < height or have_w < width:
        return None
    top, left = (have_h - height) // 2, (have_w - width) // 2
    image = image[:, top : top + height, left : left + width]
    if image.shape[0] != channels:  # only ever grey to RGB: the plan picks RGB when anything is colour
        image = np.repeat(image, channels, axis=0)
    return image


def image_batches(
    source: ImageSource,
    entries: list[Entry],
    group: Group,
    channels: int,
    batch_size: int,
    corrupt: str,
    skipped: SkipReport,
    progress,
) -> Iterator[tuple[np.ndarray, list[str]]]:
    """Decode, crop and stack ``entries`` into ``(B, C, H, W)`` batches with their labels."""
    images, labels = [], []
    for entry in entries:
        image = load_checked(source, entry, corrupt, skipped)
        progress.update(1)
        if image is None:
            continue
        image = _prepare(image, group.height, group.width, channels)
        if image is None:  # decoded smaller than its header said: damaged
            unreadable(entry.label, ValueError("its pixels do not match its header's size"), corrupt, skipped)
            continue
        images.append(image)
        labels.append(entry.label)
        if len(images) == batch_size:
            yield np.stack(images), labels
            images, labels = [], []
    if images:
        yield np.stack(images), labels


def photo_batches(source: PhotosSource, group: Group, count: int, batch_size: int, progress):
    """The embedded photos cut at the group's size, ``count`` of them, as labelled batches."""
    start = 0
    for batch in source.batches(group.height, group.width, count, batch_size):
        progress.update(len(batch))
        yield batch, [f"photos[{start + i}]" for i in range(len(batch))]
        start += len(batch)


def _amplitudes(images: torch.Tensor, levels: int) -> torch.Tensor:
    """Per-image RMS grid amplitude in 8-bit levels, with no noise margin: for ranking images only."""
    from lightning_checkerboard.functional import checkerboard_statistics

    stats = checkerboard_statistics(images, levels)
    return (stats.peak - stats.reference).sum(1).clamp_min(0).sqrt() * 255.0


class _GroupMetrics:
    """The metrics of one group and the figure accumulators, fed batch by batch."""

    def __init__(self, group: Group, plan: Plan, device: torch.device, *, reference: bool, fid, swd_samples: int,
                 top: int, spectra: bool) -> None:
        from lightning_checkerboard.metrics import CheckerboardScore, SlicedWassersteinDistance, SpectralDistance

        self.levels, self.device, self.fid, self.top = plan.levels, device, fid, top
        self.checkerboard = {False: CheckerboardScore(levels=plan.levels).to(device)}
        if reference:
            self.checkerboard[True] = CheckerboardScore(levels=plan.levels).to(device)
        self.spectral = SpectralDistance().to(device) if reference or spectra else None
        swd_fits = min(group.height, group.width) >= SWD_MIN_SIDE
        self.swd = SlicedWassersteinDistance().to(device) if reference and swd_fits else None
        self.swd_budget = {False: swd_samples or math.inf, True: swd_samples or math.inf}
        self.swd_used = {False: 0, True: 0}
        self.planes: dict[bool, torch.Tensor] | None = {} if spectra else None
        self.heap: list[Strongest] = []
        self.order = itertools.count()

    def add(self, batch: np.ndarray, labels: list[str], real: bool) -> None:
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        self.checkerboard[real].update(x)
        if self.spectral is not None:
            self.spectral.update(x, real=real)
        if self.swd is not None and self.swd_used[real] < self.swd_budget[real]:
            take = int(min(len(x), self.swd_budget[real] - self.swd_used[real]))
            self.swd.update(x[:take], real=real)
            self.swd_used[real] += take
        if self.fid is not None:
            self.fid.update(x, real=real)
        if self.planes is not None:
            from lightning_checkerboard.functional import windowed_power_spectrum

            unit = x.float() / 255.0 if x.dtype == torch.uint8 else x
            plane = windowed_power_spectrum(unit, onesided=False).double().sum(0)
            self.planes[real] = self.planes[real] + plane if real in self.planes else plane
        if self.top and not real:
            for amplitude, label, image in zip(_amplitudes(x, self.levels).tolist(), labels, batch):
                item = Strongest(amplitude, -next(self.order), label, np.array(image))
                if len(self.heap) < self.top:
                    heapq.heappush(self.heap, item)
                elif item > self.heap[0]:
                    heapq.heapreplace(self.heap, item)

    def _swd(self) -> dict[str, Any]:
        if self.swd is None:
            return {"swd": None, "swd_per_level": None,
                    "swd_unavailable_reason": f"images smaller than {SWD_MIN_SIDE}x{SWD_MIN_SIDE}"}
        per_level = self.swd.per_level()  # compute() is their mean: one pass over the descriptors, not two
        return {"swd": float(per_level.mean()), "swd_per_level": [float(v) for v in per_level],
                "swd_images": [self.swd_used[False], self.swd_used[True]], "swd_unavailable_reason": None}

    def _fid(self) -> dict[str, Any]:
        keys = ("fid", "kid", "kid_std", "precision", "recall")
        out: dict[str, Any] = dict.fromkeys(keys)
        info = self.fid.result_info()
        out["fid_extractor"] = info["fid_extractor"]
        out["fid_unavailable_reason"] = info["fid_unavailable_reason"]
        if not self.fid.available:
            return out
        least = min(info["fid_real_samples"], info["fid_fake_samples"])
        if least > self.fid.prc_neighborhood:
            out.update({key: float(value) for key, value in self.fid.diagnostics().items()})
        elif least >= 2:
            out["fid"] = float(self.fid.compute())
            out["fid_unavailable_reason"] = "KID and precision/recall need more than 3 images per set"
        else:
            out["fid_unavailable_reason"] = "FID needs at least 2 images per set"
        return out

    def result(self) -> tuple[dict[str, Any], GroupFigures]:
        result: dict[str, Any] = {"checkerboard": checkerboard_summary(self.checkerboard[False]), "reference": None}
        figures = GroupFigures()
        if True in self.checkerboard:
            reference: dict[str, Any] = {"checkerboard": checkerboard_summary(self.checkerboard[True])}
            reference["spectral_distance"] = float(self.spectral.compute())
            reference.update(self._swd())
            if self.fid is not None:
                reference.update(self._fid())
            result["reference"] = reference
        if self.spectral is not None:
            generated, real = self.spectral.spectra()
            figures.radial["generated"] = generated.double().cpu().numpy()
            if True in self.checkerboard:
                figures.radial["reference"] = real.double().cpu().numpy()
        if self.planes is not None:
            for real, plane in self.planes.items():
                count = float(self.checkerboard[real].num_images)
                figures.plane["reference" if real else "generated"] = (plane / count).cpu().numpy()
        figures.strongest = sorted(self.heap, reverse=True)
        return result, figures


def measure_group(
    group: Group,
    plan: Plan,
    generated: ImageSource,
    reference: ImageSource | PhotosSource | None,
    *,
    device: torch.device,
    batch_size: int,
    corrupt: str,
    skipped: tuple[SkipReport, SkipReport],
    fid,
    swd_samples: int,
    top: int,
    spectra: bool,
    progress,
) -> Measurement:
    """Score one group: stream its generated images, then its reference images, through the metrics.

    Args:
        group: the group to score.
        plan: the levels and channels.
        generated, reference: the sources (``reference`` ``None`` for no reference).
        device: where the metrics run.
        batch_size: images per batch.
        corrupt: ``"skip"`` or ``"error"``, for images that fail to decode.
        skipped: the generated and the reference set's skip reports.
        fid: a shared FID metric (reset here), or ``None`` for no FID.
        swd_samples: images per set SWD takes (the first ones; 0 for all).
        top: number of strongest generated images to keep for figures (0: none).
        spectra: whether to keep the mean 2-D power spectra for figures.
        progress: a ``tqdm``-like object advanced once per image read.
    """
    if fid is not None:
        fid.reset()
    metrics = _GroupMetrics(group, plan, device, reference=reference is not None, fid=fid,
                            swd_samples=swd_samples, top=top, spectra=spectra)
    for batch, labels in image_batches(generated, group.generated, group, plan.channels, batch_size, corrupt,
                                       skipped[0], progress):
        metrics.add(batch, labels, real=False)
    result: dict[str, Any] = {"size": [group.height, group.width]}
    if int(metrics.checkerboard[False].num_images) == 0:
        result.update(checkerboard=None, reference=None)
        return Measurement(result, GroupFigures(), metrics.checkerboard[False])
    if isinstance(reference, PhotosSource):
        count = int(metrics.checkerboard[False].num_images)
        batches = photo_batches(reference, group, count, batch_size, progress)
    elif reference is not None:
        batches = image_batches(reference, group.reference, group, plan.channels, batch_size, corrupt, skipped[1],
                                progress)
    else:
        batches = iter(())
    for batch, labels in batches:
        metrics.add(batch, labels, real=True)
    if reference is not None and int(metrics.checkerboard[True].num_images) == 0:
        metrics.checkerboard.pop(True)
        metrics.spectral = metrics.swd = metrics.fid = None
        numbers, figures = metrics.result()
        numbers["reference"] = {"unavailable_reason": "none of the reference images of this size could be read"}
    else:
        numbers, figures = metrics.result()
    result.update(numbers)
    return Measurement(result, figures, metrics.checkerboard[False])
