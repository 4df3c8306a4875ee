"""Probe a decoder: the grid pattern of its outputs at every period up to its stride, its sites, its seams.

For each input kind (:mod:`lightning_checkerboard.probe.inputs`) the decoded images are mapped from
the decoder's value range to ``[0, 1]`` and scored by the checkerboard score with
``levels = log2(stride)``: the amplitude per period ``2, 4, ..., stride`` in 8-bit levels of that range,
with its 95 % upper bound. Nothing is clamped: decodes that overshoot the range (random weights do)
are brought into ``[0, 1]`` by one affine map per set and the readings scaled back, which is exact
because the readings are proportional to contrast and blind to offset. The decoder's upsampling sites are audited
(:func:`~lightning_checkerboard.adapt.audit`) on random latents. With a tile size, the same latents
are decoded whole and in tiles (:func:`~lightning_checkerboard.probe.decoder.tiled_decode`) and both
are read at the tile period ``T = tile - overlap`` by
:func:`~lightning_checkerboard.functional.periodic_pattern_reading`: the seam is the pattern on the
periods that divide ``T`` but not the stride, where the decoder's own grid cannot be.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn

from lightning_checkerboard.adapt.audit import AuditReport, audit
from lightning_checkerboard.functional.checkerboard import DEFAULT_ALPHA, DEFAULT_Z
from lightning_checkerboard.functional.periodic import periodic_pattern_periods, periodic_pattern_reading
from lightning_checkerboard.metrics.checkerboard import CheckerboardScore
from lightning_checkerboard.probe.decoder import DecoderAdapter, ProbeError, check_tiling, tiled_decode
from lightning_checkerboard.probe.inputs import DESCRIPTIONS, INPUT_KINDS, make_inputs

__all__ = ["KindReading", "PeriodReading", "ProbeOptions", "ProbeReport", "SeamReading", "default_size",
           "default_tile_image_size", "probe_decoder", "read_seam", "read_seams"]

#: The smallest default image side: the bound is loose with one ring of strips (``4 * stride``).
MIN_DEFAULT_SIZE = 128
#: Tiled readings default to at least this many pixels a side.
MIN_TILE_IMAGE_SIZE = 256
#: The most pixels one set of decodes may hold (``num_images * side**2``): a size past it is refused, not run
#: out of memory.
MAX_DECODED_PIXELS = 2**26


def default_size(stride: int) -> int:
    """The default image side for a decoder of ``stride``: ``max(128, 8 * stride)`` (8 cells of the grid at least).

    Example:
        >>> default_size(8), default_size(32)
        (128, 256)
    """
    return max(MIN_DEFAULT_SIZE, 8 * stride)


def default_tile_image_size(period: int) -> int:
    """The default side of tiled readings: the smallest multiple of ``period`` that is ``>= 4 * period`` and ``>= 256``.

    Example:
        >>> default_tile_image_size(32), default_tile_image_size(64), default_tile_image_size(24)
        (256, 256, 264)
    """
    return max(4 * period, -(-MIN_TILE_IMAGE_SIZE // period) * period)


@dataclass(frozen=True)
class ProbeOptions:
    """How to probe.

    Attributes:
        size: image side of the period readings; ``None``: :func:`default_size`.
        num_images: inputs per kind.
        batch_size: inputs decoded at once.
        seed: seeds every input and the audit's latents.
        kinds: the input kinds to read (see :data:`~lightning_checkerboard.probe.inputs.INPUT_KINDS`).
        tile: tile side in output pixels for the seam reading; ``None``: no tiling.
        overlap: tile overlap in output pixels.
        tile_image_size: side of the tiled readings; ``None``: :func:`default_tile_image_size`.
        audit: whether to audit the decoder's upsampling sites.
        z: detection margin of the score.
        alpha: error rate of the bounds (0.05: 95 %).
    """

    size: int | None = None
    num_images: int = 16
    batch_size: int = 8
    seed: int = 0
    kinds: tuple[str, ...] = tuple(INPUT_KINDS)
    tile: int | None = None
    overlap: int = 0
    tile_image_size: int | None = None
    audit: bool = True
    z: float = DEFAULT_Z
    alpha: float = DEFAULT_ALPHA


@dataclass(frozen=True)
class PeriodReading:
    """The pattern at one period: RMS ``amplitude`` in 8-bit levels and its ``upper`` bound."""

    period: int
    amplitude: float
    upper: float


@dataclass(frozen=True)
class KindReading:
    """The reading of one input kind (``skipped`` says why there is none)."""

    kind: str
    description: str
    images: int = 0
    score: float | None = None
    upper: float | None = None
    effective_images: float | None = None
    periods: tuple[PeriodReading, ...] = ()
    skipped: str = ""


@dataclass(frozen=True)
class SeamReading:
    """Tiled against whole decoding at the tile period: per divisor of it, and summed on the seam periods."""

    tile: int
    overlap: int
    period: int
    size: int
    images: int
    latents: str
    seam_periods: tuple[int, ...]
    tiled: tuple[PeriodReading, ...]
    untiled: tuple[PeriodReading, ...]

    @staticmethod
    def _summed(readings: tuple[PeriodReading, ...], periods: tuple[int, ...]) -> tuple[float, float]:
        chosen = [r for r in readings if r.period in periods]
        return (math.sqrt(sum(r.amplitude**2 for r in chosen)), math.sqrt(sum(r.upper**2 for r in chosen)))

    @property
    def seam(self) -> tuple[float, float]:
        """The tiled decode's pattern on the seam periods: ``(amplitude, upper)``."""
        return self._summed(self.tiled, self.seam_periods)

    @property
    def untiled_seam(self) -> tuple[float, float]:
        """The whole decode's pattern on the same periods: ``(amplitude, upper)``."""
        return self._summed(self.untiled, self.seam_periods)


@dataclass(frozen=True)
class ProbeReport:
    """What :func:`probe_decoder` found; :mod:`lightning_checkerboard.probe.report` prints and serialises it."""

    decoder: str
    source: str
    latent_channels: int
    image_channels: int
    stride: int
    value_range: tuple[float, float]
    size: int
    alpha: float
    seed: int
    device: str
    readings: tuple[KindReading, ...]
    seam: SeamReading | None
    audit: AuditReport | None
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def periods(self) -> tuple[int, ...]:
        """``2, 4, ..., stride``."""
        return tuple(2**level for level in range(1, int(math.log2(self.stride)) + 1))


def _unit_scaled(*sets: Tensor) -> tuple[list[Tensor], float]:
    """The image sets mapped into ``[0, 1]`` by one affine map if any value falls outside, and its scale.

    The readings are proportional to contrast and blind to offset, so a reading of the mapped images
    times the returned scale is the reading of the images themselves, without clamping anything.
    """
    low = min(float(images.min()) for images in sets)
    high = max(float(images.max()) for images in sets)
    if low >= 0.0 and high <= 1.0:
        return list(sets), 1.0
    if high == low:  # constant images outside [0, 1]: moved inside, nothing to scale
        return [torch.full_like(images, 0.5) for images in sets], 1.0
    scale = high - low
    return [((images - low) / scale).clamp(0.0, 1.0) for images in sets], scale


def _levels(stride: int) -> int:
    if stride < 2 or stride & (stride - 1):
        raise ProbeError(f"the per-period reading needs a stride that is a power of two (2, 4, 8, ...); the decoder's "
                         f"is {stride}")
    return int(math.log2(stride))


def _check_pixels(count: int, side: int, flag: str) -> None:
    if count * side * side > MAX_DECODED_PIXELS:
        raise ProbeError(f"{count} decodes of {side}x{side} px ({flag}, --num-images) hold {count * side * side:,} "
                         f"pixels, more than the {MAX_DECODED_PIXELS:,} allowed; use fewer images or a smaller size or "
                         "tile")


def _check(options: ProbeOptions, stride: int) -> tuple[int, int | None]:
    size = options.size if options.size is not None else default_size(stride)
    if size % stride or size < 4 * stride:
        raise ProbeError(f"--size must be a multiple of the decoder's stride {stride} and at least {4 * stride}; "
                         f"got {size}")
    _check_pixels(options.num_images, size, "--size")
    unknown = [kind for kind in options.kinds if kind not in INPUT_KINDS]
    if unknown or not options.kinds:
        raise ProbeError(f"--inputs must name some of {', '.join(INPUT_KINDS)}; got {','.join(options.kinds)!r}")
    if options.num_images < 2 or options.batch_size < 1:
        raise ProbeError(f"--num-images must be at least 2 and --batch-size at least 1; got {options.num_images} "
                         f"and {options.batch_size}")
    period = None
    if options.tile is not None:
        period = check_tiling(options.tile, options.overlap, stride)
        if period <= stride:
            raise ProbeError(f"--tile minus --overlap must be larger than the stride {stride} (a seam on the decoder's "
                             f"own grid cannot be told apart); got {period}")
        side = options.tile_image_size
        if side is not None and (side % period or side < 4 * period):
            raise ProbeError(f"--tile-image-size must be a multiple of the tile period {period} and at least "
                             f"{4 * period}; got {side}")
        _check_pixels(options.num_images, side or default_tile_image_size(period), "--tile, --tile-image-size")
    return size, period


def _decoded(adapter: DecoderAdapter, kind: str, count: int, side: int, seed: int, batch_size: int):
    """Yield ``[0, 1]``-mapped decoded batches of ``kind``, checked for shape and finiteness."""
    batch = make_inputs(kind, count, side, stride=adapter.stride, image_channels=adapter.image_channels,
                        latent_channels=adapter.latent_channels, seed=seed)
    source = batch.images if batch.images is not None else batch.latents
    for start in range(0, count, batch_size):
        chunk = source[start : start + batch_size]
        latents = adapter.encode(adapter.from_unit(chunk)) if batch.images is not None else chunk
        images = adapter.to_unit(adapter.decode(latents))
        expected = (len(chunk), adapter.image_channels, side, side)
        if tuple(images.shape) != expected:
            raise ProbeError(f"{kind}: decoding gave shape {tuple(images.shape)}, expected {expected}")
        if not bool(torch.isfinite(images).all()):
            raise ProbeError(f"{kind}: the decoder's output holds NaN or infinity")
        yield images


def _read_kind(adapter: DecoderAdapter, kind: str, size: int, options: ProbeOptions) -> KindReading:
    if INPUT_KINDS[kind] and not adapter.has_encoder:
        return KindReading(kind, DESCRIPTIONS[kind], skipped="skipped: the model has no encode method")
    metric = CheckerboardScore(levels=_levels(adapter.stride), z=options.z, alpha=options.alpha)
    decoded = torch.cat([images.cpu() for images in
                         _decoded(adapter, kind, options.num_images, size, options.seed, options.batch_size)])
    (decoded,), scale = _unit_scaled(decoded)
    metric.update(decoded)
    values = {key: float(value) * (scale if key.startswith(("score", "upper", "amplitude")) else 1.0)
              for key, value in metric.diagnostics().items()}
    periods = tuple(PeriodReading(2**lv, values[f"amplitude_period_{2**lv}"], values[f"upper_period_{2**lv}"])
                    for lv in range(1, metric.levels + 1))
    return KindReading(kind, DESCRIPTIONS[kind], int(metric.num_images), values["score"], values["upper"],
                       values["effective_images"], periods)


def _periodic_readings(images: Tensor, period: int, options: ProbeOptions, scale: float
                       ) -> tuple[PeriodReading, ...]:
    values = periodic_pattern_reading(images, period, z=options.z, alpha=options.alpha)
    return tuple(PeriodReading(p, scale * float(values[f"amplitude_period_{p}"]),
                               scale * float(values[f"upper_period_{p}"])) for p in periodic_pattern_periods(period))


def read_seam(adapter: DecoderAdapter, options: ProbeOptions) -> SeamReading:
    """Decode the same latents whole and in tiles (``options.tile``, ``options.overlap``); read both at the tile period.

    The latents are the held-out photographs' (encoded) when the model has an encoder, else random
    normal ones; the images are ``options.tile_image_size`` (default :func:`default_tile_image_size`)
    pixels a side, ``options.num_images`` of them.

    Raises:
        ProbeError: no ``options.tile``, a tiling that does not fit the stride, a tile period not above
            the stride, a tile image size that the period does not divide or that is under four periods,
            or images of more than :data:`MAX_DECODED_PIXELS` pixels in all.
    """
    if options.tile is None:
        raise ProbeError("read_seam needs options.tile (--tile)")
    return read_seams(adapter, options, [(options.tile, options.overlap)])[0]


@torch.no_grad()
def read_seams(adapter: DecoderAdapter, options: ProbeOptions, tilings: Sequence[tuple[int, int]]
               ) -> tuple[SeamReading, ...]:
    """:func:`read_seam` for several ``(tile, overlap)`` tilings of the same latents, decoded whole once.

    The image side (``options.tile_image_size``) must be a multiple of every tile period and at least
    four of the largest; by default it is the smallest such multiple of their least common multiple
    that is also at least 256 pixels. ``options.tile`` and ``options.overlap`` are not used.

    Raises:
        ProbeError: as :func:`read_seam`, for any of the tilings.
    """
    if not tilings:
        raise ProbeError("read_seams needs at least one (tile, overlap) tiling")
    periods = [_check(replace(options, tile=tile, overlap=overlap, tile_image_size=None), adapter.stride)[1]
               for tile, overlap in tilings]
    common = math.lcm(*periods)
    side = options.tile_image_size or max(4 * max(periods), MIN_TILE_IMAGE_SIZE, common)
    side = -(-side // common) * common if options.tile_image_size is None else side
    for (tile, overlap), period in zip(tilings, periods):
        _check(replace(options, tile=tile, overlap=overlap, tile_image_size=side), adapter.stride)
    stride, count = adapter.stride, options.num_images
    if adapter.has_encoder:
        source = "held-out photographs, encoded"
        photos = make_inputs("photos", count, side, stride=stride, image_channels=adapter.image_channels,
                             latent_channels=adapter.latent_channels, seed=options.seed).images
    else:
        source = "random normal latents"
        generator = torch.Generator().manual_seed(options.seed * 1009 + 97)
        latents_all = torch.randn(count, adapter.latent_channels, side // stride, side // stride, generator=generator)
    whole: list[Tensor] = []
    tiled: list[list[Tensor]] = [[] for _ in tilings]
    for start in range(0, count, options.batch_size):
        if adapter.has_encoder:
            latents = adapter.encode(adapter.from_unit(photos[start : start + options.batch_size]))
        else:
            latents = latents_all[start : start + options.batch_size]
        whole.append(adapter.to_unit(adapter.decode(latents)).cpu())
        for (tile, overlap), pieces in zip(tilings, tiled):
            pieces.append(adapter.to_unit(tiled_decode(adapter.decode, latents, tile=tile, overlap=overlap,
                                                       stride=stride)).cpu())
    sets = [torch.cat(whole), *(torch.cat(pieces) for pieces in tiled)]
    if not all(bool(torch.isfinite(images).all()) for images in sets):
        raise ProbeError("tiling: the decoder's output holds NaN or infinity")
    (whole_images, *tiled_sets), scale = _unit_scaled(*sets)
    readings = []
    for (tile, overlap), period, tiled_images in zip(tilings, periods, tiled_sets):
        seam_periods = tuple(p for p in periodic_pattern_periods(period) if stride % p)
        readings.append(SeamReading(tile, overlap, period, side, count, source, seam_periods,
                                    _periodic_readings(tiled_images, period, options, scale),
                                    _periodic_readings(whole_images, period, options, scale)))
    return tuple(readings)


class _Decoding(nn.Module):
    """The adapter's ``decode`` as a module, so that :func:`audit` can hook the model's sites."""

    def __init__(self, adapter: DecoderAdapter) -> None:
        super().__init__()
        self.model = adapter.model if isinstance(adapter.model, nn.Module) else nn.Identity()
        self._adapter = adapter

    def forward(self, latents: Tensor) -> Tensor:
        return self._adapter.decode(latents)


def _audit(adapter: DecoderAdapter, size: int, options: ProbeOptions) -> AuditReport:
    generator = torch.Generator().manual_seed(options.seed)
    side = size // adapter.stride
    latents = torch.randn(min(4, options.num_images), adapter.latent_channels, side, side, generator=generator)
    report = audit(_Decoding(adapter), latents.to(adapter.device), z=options.z, alpha=options.alpha)
    rows = tuple(replace(row, path=row.path.removeprefix("model.")) for row in report.rows)
    return replace(report, model=adapter.name, rows=rows)


def probe_decoder(adapter: DecoderAdapter, options: ProbeOptions | None = None, *, source: str = "") -> ProbeReport:
    """Read the grid pattern of ``adapter``'s decodings per period and input kind; audit it; read tiling seams.

    Args:
        adapter: the decoder (:class:`~lightning_checkerboard.probe.DecoderAdapter`).
        options: what to read (:class:`ProbeOptions`); defaults for ``None``.
        source: how the decoder was named (a spec), for the report.

    Returns:
        A :class:`ProbeReport`.

    Raises:
        ProbeError: options that do not fit the decoder (size, tiling, a stride that is not a power of
            two), decodes of more than :data:`MAX_DECODED_PIXELS` pixels in all, or a decoder whose output
            has the wrong shape or is not finite.

    Example:
        >>> import torch.nn.functional as F
        >>> from lightning_checkerboard.probe import DecoderAdapter, ProbeOptions, probe_decoder
        >>> bilinear = torch.nn.Upsample(scale_factor=4, mode="bilinear")  # 3 latent channels in, images out
        >>> report = probe_decoder(DecoderAdapter(bilinear, latent_channels=3),
        ...                        ProbeOptions(kinds=("ramp-latents",), num_images=8, audit=False))
        >>> report.stride, [(p.period, round(p.amplitude, 2)) for p in report.readings[0].periods]
        (4, [(2, 0.0), (4, 0.0)])
    """
    options = options or ProbeOptions()
    started = time.perf_counter()
    _levels(adapter.stride)
    size, period = _check(options, adapter.stride)
    with torch.no_grad():
        readings = tuple(_read_kind(adapter, kind, size, options) for kind in options.kinds)
    seam = read_seam(adapter, options) if period is not None else None
    report = _audit(adapter, size, options) if options.audit else None
    return ProbeReport(adapter.name, source, adapter.latent_channels, adapter.image_channels, adapter.stride,
                       adapter.value_range, size, options.alpha, options.seed, str(adapter.device), readings, seam,
                       report, time.perf_counter() - started)
