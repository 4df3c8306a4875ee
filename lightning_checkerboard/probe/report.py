"""A probe's readings as tables for people and as JSON for programs."""

from __future__ import annotations

import math
from typing import Any

from lightning_checkerboard.probe.probing import KindReading, PeriodReading, ProbeReport, SeamReading

__all__ = ["SCHEMA", "format_report", "summary_line", "to_json"]

#: Names the layout of the JSON report; bumped when a key changes meaning or goes away.
SCHEMA = "lightning-checkerboard/probe/1"
UNIT = "8-bit levels of the decoder's value range (RMS of the grid pattern, 255 = the whole range)"


def _number(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    if math.isnan(value):
        return "nan"
    return f"{value:.{digits}f}"


def _bound(value: float | None) -> str:
    """An upper bound to 2 decimals, rounded up: a bound printed lower than it is would no longer bound."""
    if value is None or not math.isfinite(value):
        return _number(value, 2)
    return _number(math.ceil(round(value * 100, 6)) / 100, 2)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _period_rows(readings: tuple[PeriodReading, ...], indent: str = "  ") -> list[str]:
    lines = [f"{indent}period  amplitude  < 95 % bound"]
    lines += [f"{indent}{r.period:>6}  {_number(r.amplitude, 3):>9}  < {_bound(r.upper)}" for r in readings]
    return lines


def _kind_lines(reading: KindReading) -> list[str]:
    head = f"{reading.kind}: {reading.description}"
    if reading.skipped:
        return [head, f"  {reading.skipped}"]
    lines = [head, f"  {reading.images} images, score {_number(reading.score, 3)} (< {_bound(reading.upper)})"
             + (f", worth {reading.effective_images:.1f} independent images"
                if reading.effective_images is not None and reading.effective_images < 0.9 * reading.images else "")]
    return lines + _period_rows(reading.periods)


def _seam_lines(seam: SeamReading) -> list[str]:
    seam_amp, seam_up = seam.seam
    whole_amp, whole_up = seam.untiled_seam
    periods = ", ".join(map(str, seam.seam_periods))
    lines = [f"tiling: --tile {seam.tile} --overlap {seam.overlap}: tile period T = {seam.period} px, "
             f"{seam.images} images of {seam.size}x{seam.size} px ({seam.size // seam.period} periods) from "
             f"{seam.latents}",
             f"  seam (periods {periods}: dividing T, not the stride): tiled {_number(seam_amp, 3)} "
             f"(< {_bound(seam_up)}), untiled {_number(whole_amp, 3)} (< {_bound(whole_up)})",
             "  period  tiled      < 95 %    untiled    < 95 %"]
    for tiled, whole in zip(seam.tiled, seam.untiled):
        mark = "  seam" if tiled.period in seam.seam_periods else ""
        lines.append(f"  {tiled.period:>6}  {_number(tiled.amplitude, 3):>9}  < {_bound(tiled.upper):<6}  "
                     f"{_number(whole.amplitude, 3):>9}  < {_bound(whole.upper):<6}{mark}".rstrip())
    return lines


def summary_line(report: ProbeReport) -> str:
    """One line: the strongest reading (kind and period) with its bound, and the seam if tiled."""
    best = None
    for reading in report.readings:
        for period in reading.periods:
            if best is None or period.amplitude > best[1].amplitude:
                best = (reading.kind, period)
    if best is None:
        text = "summary: no input kind was read"
    else:
        kind, period = best
        loosest = max((p.upper for r in report.readings for p in r.periods), default=math.nan)
        if period.amplitude > 0:
            text = (f"summary: strongest grid pattern {_number(period.amplitude, 3)} levels at period {period.period} "
                    f"({kind}, < {_bound(period.upper)}); every reading < {_bound(loosest)} at 95 %")
        else:
            text = (f"summary: no grid pattern stood out at any period or input kind; every reading < "
                    f"{_bound(loosest)} at 95 %")
    if report.seam is not None:
        amp, up = report.seam.seam
        whole, _ = report.seam.untiled_seam
        text += (f"; seam at T = {report.seam.period} (overlap {report.seam.overlap}) {_number(amp, 3)} "
                 f"(< {_bound(up)}) vs untiled {_number(whole, 3)}")
    return text


def format_report(report: ProbeReport) -> str:
    """The human-readable report: header, one table per input kind, tiling, the audit, a summary line."""
    low, high = report.value_range
    lines = [f"probe {report.source or report.decoder}: {report.decoder}, latent {report.latent_channels} channels, "
             f"stride {report.stride}, {report.image_channels}-channel images in [{low:g}, {high:g}]",
             f"periods {', '.join(map(str, report.periods))} read on {report.size}x{report.size} px decodes "
             f"({report.size // report.stride} grid cells a side), device {report.device}, seed {report.seed}, "
             f"{report.seconds:.1f} s",
             f"unit: {UNIT}; decodes are mapped to [0, 1] by the value range, not clamped"]
    lines += [f"note: {note}" for note in report.notes]
    for reading in report.readings:
        lines += ["", *_kind_lines(reading)]
    if report.seam is not None:
        lines += ["", *_seam_lines(report.seam)]
    if report.audit is not None:
        lines += ["", "audit of the decoder's upsampling sites (random latents):", str(report.audit)]
    lines += ["", summary_line(report)]
    return "\n".join(lines)


def _periods_json(readings: tuple[PeriodReading, ...]) -> list[dict[str, Any]]:
    return [{"period": r.period, "amplitude": _finite(r.amplitude), "upper": _finite(r.upper)} for r in readings]


def to_json(report: ProbeReport) -> dict[str, Any]:
    """Every number of ``report`` with how it was measured, JSON-ready (an infinite bound is ``null``)."""
    from lightning_checkerboard import __version__

    seam = report.seam
    return {
        "schema": SCHEMA,
        "package_version": __version__,
        "decoder": report.decoder,
        "source": report.source,
        "latent_channels": report.latent_channels,
        "image_channels": report.image_channels,
        "stride": report.stride,
        "value_range": list(report.value_range),
        "unit": UNIT,
        "size": report.size,
        "alpha": report.alpha,
        "seed": report.seed,
        "device": report.device,
        "notes": list(report.notes),
        "inputs": [{"kind": r.kind, "description": r.description, "skipped": r.skipped or None, "images": r.images,
                    "score": _finite(r.score), "upper": _finite(r.upper), "effective_images": r.effective_images,
                    "periods": _periods_json(r.periods)} for r in report.readings],
        "tiling": None if seam is None else {
            "tile": seam.tile, "overlap": seam.overlap, "period": seam.period, "size": seam.size,
            "images": seam.images, "latents": seam.latents, "seam_periods": list(seam.seam_periods),
            "seam": {"amplitude": _finite(seam.seam[0]), "upper": _finite(seam.seam[1])},
            "untiled_seam": {"amplitude": _finite(seam.untiled_seam[0]), "upper": _finite(seam.untiled_seam[1])},
            "tiled": _periods_json(seam.tiled), "untiled": _periods_json(seam.untiled)},
        "audit": None if report.audit is None else report.audit.to_dict(),
        "summary": summary_line(report),
        "seconds": report.seconds,
    }
