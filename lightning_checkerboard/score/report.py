"""The score as a table for people and as JSON for programs (every number, and how it was measured)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lightning_checkerboard.score.runner import ScoreRun

__all__ = ["SCHEMA", "format_table", "skip_warnings", "to_json"]

#: Names the layout of the JSON report; bumped when a key changes meaning or goes away.
SCHEMA = "lightning-checkerboard/score/1"

#: How mixed channels are handled, as the protocol records it.
CHANNEL_POLICY = "greyscale repeated to RGB when any image of either set is in colour; alpha dropped"
# Labels of skipped images kept in the JSON per reason; the counts are always complete.
_MAX_LISTED = 100


def _version() -> str:
    from lightning_checkerboard import __version__

    return __version__


def _counts(run: ScoreRun, which: int) -> dict[str, int | None]:
    skipped = run.skipped[which]
    scored = sum(
        (m.result["checkerboard"] or {}).get("images", 0) if which == 0
        else ((m.result.get("reference") or {}).get("checkerboard") or {}).get("images", 0)
        for m in run.measurements
    )
    found = run.found["generated" if which == 0 else "reference"]
    counts = {"found": found, "scored": scored, "unreadable": len(skipped.unreadable),
              "too_small": len(skipped.too_small), "too_large": len(skipped.too_large)}
    if which == 1:
        counts["unused_sizes"] = run.found["reference_unused"]
    return counts


def _skipped(run: ScoreRun, which: int) -> dict[str, Any]:
    report = run.skipped[which]
    return {"unreadable": report.unreadable[:_MAX_LISTED], "too_small": report.too_small[:_MAX_LISTED],
            "too_large": report.too_large[:_MAX_LISTED]}


def to_json(run: ScoreRun, figures: list[Path] | None = None) -> dict[str, Any]:
    """Every number of ``run`` with its protocol, ready for :func:`json.dumps` (non-finite values stay floats)."""
    options, plan = run.options, run.plan
    metric = run.measurements[0].checkerboard
    generated_counts = _counts(run, 0)
    groups = []
    for measurement in run.measurements:
        group = dict(measurement.result)
        group["strongest"] = [{"label": s.label, "amplitude": s.amplitude} for s in measurement.figures.strongest]
        groups.append(group)
    return {
        "schema": SCHEMA,
        "package_version": _version(),
        "protocol": {
            "generated": run.generated,
            "reference": run.reference,
            "size_policy": "crop" if options.size is not None else "group",
            "size": options.size,
            "levels": plan.levels,
            "periods": [2**level for level in range(1, plan.levels + 1)],
            "channels": plan.channels,
            "channel_policy": CHANNEL_POLICY,
            "unit": "8-bit levels (RMS of the grid pattern, 255 = full range)",
            "kappa": metric.kappa,
            "z": metric.z,
            "alpha": metric.alpha,
            "batch_size": options.batch_size,
            "device": run.device,
            "corrupt": options.corrupt,
            "npz_key": options.npz_key,
            "reference_npz_key": options.reference_npz_key,
            "fid": options.fid if run.reference is not None else None,
            "fid_weights": None if options.fid_weights is None else str(options.fid_weights),
            "fid_extractor": run.fid_extractor,
            "swd_samples": options.swd_samples,
            "max_pixels": run.max_pixels,
        },
        "counts": {
            "generated": generated_counts,
            "reference": None if run.reference is None else _counts(run, 1),
        },
        "groups": groups,
        "all_sizes": run.all_sizes,
        "skipped": {"generated": _skipped(run, 0), "reference": None if run.reference is None else _skipped(run, 1)},
        "figures": [str(path) for path in figures or []],
        "notes": list(run.notes),
        "warnings": list(run.warnings),
        "seconds": run.seconds,
        "images_per_second": generated_counts["scored"] / run.seconds if run.seconds > 0 else None,
    }


def skip_warnings(run: ScoreRun) -> list[str]:
    """One line per set that had images over the pixel limit: how many, and the first with its size."""
    lines = []
    for which, name in ((0, "GENERATED"), (1, "--reference")):
        report = run.skipped[which]
        if report.too_large:
            lines.append(
                f"skipped {len(report.too_large)} {name} image(s) of more than --max-pixels {run.max_pixels} "
                f"pixels without decoding them (the first: {report.too_large_example}); pass a larger "
                "--max-pixels to score them."
            )
    return lines


def _number(value: float | None, digits: int) -> str:
    if value is None:
        return "–"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def _checkerboard_lines(summary: dict[str, Any], indent: str) -> list[str]:
    lines = [
        f"{indent}checkerboard score {_number(summary['score'], 3)} levels "
        f"(< {_number(summary['upper'], 2)} at 95 %), ratio {_number(summary['ratio'], 4)}",
        f"{indent}  period   amplitude   < 95 %   PNR (dB)",
    ]
    effective = summary.get("effective_images")
    if effective is not None and effective < 0.9 * summary["images"]:
        lines.insert(1, f"{indent}the {summary['images']} images vary like {effective:.1f} independent ones "
                        "(near-duplicates or copies): the bound widens and weak patterns cannot be told from content")
    for period in summary["periods"]:
        lines.append(
            f"{indent}  {period['period']:>6}   {_number(period['amplitude'], 3):>9}   "
            f"{_number(period['upper'], 2):>6}   {period['pnr_db']:>+8.2f}"
        )
    return lines


def _reference_lines(reference: dict[str, Any], name: str) -> list[str]:
    if "checkerboard" not in reference:
        return [f"  reference {name}: {reference['unavailable_reason']}"]
    own = reference["checkerboard"]
    lines = [
        f"  reference {name}: {own['images']} images, checkerboard score {_number(own['score'], 3)} "
        f"(< {_number(own['upper'], 2)})",
    ]
    swd = (_number(reference["swd"], 1) if reference["swd"] is not None
           else f"unavailable ({reference['swd_unavailable_reason']})")
    parts = [f"spectral distance {_number(reference['spectral_distance'], 3)}", f"SWD {swd}"]
    if "fid" in reference:
        if reference["fid"] is None and "policy='off'" in (reference["fid_unavailable_reason"] or ""):
            parts.append("FID off")
        elif reference["fid"] is None:
            parts.append(f"FID unavailable ({reference['fid_unavailable_reason']})")
        else:
            parts.append(f"FID {_number(reference['fid'], 2)}")
            if reference["kid"] is not None:
                parts.append(f"KID {reference['kid']:.4f} ± {reference['kid_std']:.4f}, "
                             f"precision {reference['precision']:.3f}, recall {reference['recall']:.3f}")
    lines.append("  " + ", ".join(parts))
    return lines


def format_table(run: ScoreRun, figures: list[Path] | None = None) -> str:
    """The human-readable report printed on stdout."""
    payload = to_json(run, figures)
    counts, protocol = payload["counts"], payload["protocol"]
    gen = counts["generated"]
    head = (f"lightning-checkerboard {payload['package_version']} score: {gen['scored']} of {gen['found']} images "
            f"from {run.generated}")
    extras = [f"{gen['unreadable']} unreadable skipped"] if gen["unreadable"] else []
    if gen["too_small"]:
        extras.append(f"{gen['too_small']} smaller than --size skipped")
    if gen["too_large"]:
        extras.append(f"{gen['too_large']} over --max-pixels skipped")
    lines = [head + (f" ({', '.join(extras)})" if extras else "")]
    policy = f"centre-cropped to {run.options.size}x{run.options.size}" if run.options.size else "grouped by size"
    periods = ", ".join(str(p) for p in protocol["periods"])
    channels = "RGB" if protocol["channels"] == 3 else "greyscale"
    rate = payload["images_per_second"]
    lines.append(f"levels {protocol['levels']} (periods {periods}), {policy}, {channels}, device {run.device}, "
                 f"{run.seconds:.1f} s" + (f" ({rate:.1f} images/s)" if rate is not None else ""))
    if run.reference is not None:
        ref = counts["reference"]
        found = f"{ref['scored']} of {ref['found']}" if ref["found"] is not None else f"{ref['scored']}"
        notes = [f"{ref['unreadable']} unreadable skipped"] if ref["unreadable"] else []
        if ref["too_small"]:
            notes.append(f"{ref['too_small']} smaller than --size skipped")
        if ref["too_large"]:
            notes.append(f"{ref['too_large']} over --max-pixels skipped")
        if ref.get("unused_sizes"):
            notes.append(f"{ref['unused_sizes']} of sizes not generated, unused")
        lines.append(f"reference {run.reference}: {found} images" + (f" ({', '.join(notes)})" if notes else ""))
    for group in payload["groups"]:
        h, w = group["size"]
        if group["checkerboard"] is None:
            lines += ["", f"{h}x{w}: no readable image"]
            continue
        lines += ["", f"{h}x{w}: {group['checkerboard']['images']} images"]
        lines += _checkerboard_lines(group["checkerboard"], "  ")
        if group["reference"] is not None:
            lines += _reference_lines(group["reference"], run.reference)
        if group["strongest"]:
            shown = ", ".join(f"{s['label']} ({s['amplitude']:.2f})" for s in group["strongest"][:3])
            lines.append(f"  strongest images (per-image amplitude, no noise margin): {shown}")
    if payload["all_sizes"] is not None:
        lines += ["", f"all sizes: {payload['all_sizes']['checkerboard']['images']} images"]
        lines += _checkerboard_lines(payload["all_sizes"]["checkerboard"], "  ")
    for path in payload["figures"]:
        lines.append(f"figure: {path}")
    return "\n".join(lines)
