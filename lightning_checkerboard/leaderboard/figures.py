"""Figures of sample pictures at an integer zoom, labelled, each row in its upsampler's colour.

A figure about periodic patterns must not resample its pictures: a 32-pixel sample drawn 2.3 times
larger paints uneven 2- and 3-pixel blocks, a beat pattern of its own. :func:`panel_figure` lays out
rows of pictures, each repeated ``zoom`` times per pixel (nothing else touches them), with a label
per row (and its :func:`~lightning_checkerboard.leaderboard.palette.style_of` colour), a heading per
column, a title and a note, in DejaVu Sans at 13 pixels. The PNG is meant to be shown at its own
size, which the documentation does for images narrower than its column.

:func:`shared_stretch` gives pictures one contrast stretch, so that pictures whose amplitudes are
compared keep their ratio.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from lightning_checkerboard.leaderboard.palette import style_of

__all__ = ["FONT_PX", "panel_figure", "shared_stretch"]

#: Text height in pixels.
FONT_PX = 13
_GAP = 6
_MARGIN = 10


def _font(bold: bool = False):
    from matplotlib import font_manager
    from PIL import ImageFont

    return ImageFont.truetype(font_manager.findfont("DejaVu Sans:bold" if bold else "DejaVu Sans"), FONT_PX)


def shared_stretch(images: Sequence[np.ndarray], fill: float = 0.45) -> tuple[list[np.ndarray], float]:
    """Each image (float, 0–1) about its own mean, all times one gain, as uint8; and the gain.

    The gain makes the largest deviation of all the images reach ``fill`` of the range, so an image
    with a tenth of another's contrast shows a tenth of it.
    """
    centred = [np.asarray(image, dtype=np.float64) - float(np.mean(image)) for image in images]
    peak = max((float(np.abs(c).max()) for c in centred), default=0.0)
    gain = fill / peak if peak > 0 else 1.0
    return [((0.5 + gain * c) * 255).round().clip(0, 255).astype(np.uint8) for c in centred], gain


def _rgb(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.dtype != np.uint8:
        raise TypeError(f"panel pictures must be uint8 arrays; got {array.dtype}")
    return array[..., :3]


def panel_figure(rows: Sequence[Sequence[np.ndarray]], *, zoom: int | Sequence[int] = 2,
                 row_labels: Sequence[str] = (), row_styles: Sequence[str | None] = (),
                 column_labels: Sequence[str] = (), title: str = "", note: str = "") -> bytes:
    """PNG bytes of ``rows`` of pictures, each drawn at an integer ``zoom`` (per column, or one for all).

    Args:
        rows: per row, its pictures (``H×W×3`` or ``H×W`` uint8), one per column.
        zoom: the integer zoom of every picture, or of each column.
        row_labels: the text left of each row.
        row_styles: the upsampler name whose colour marks each row (``None``: no mark).
        column_labels: the text above each column.
        title: a line above everything.
        note: lines below everything (``\\n`` separates them).

    Raises:
        ValueError: a zoom below 1 or not an integer.

    Example:
        >>> png = panel_figure([[np.zeros((4, 4), np.uint8)]], zoom=3, row_labels=["deconv"], row_styles=["deconv"])
        >>> png[:4] == b"\\x89PNG"
        True
    """
    from PIL import Image, ImageDraw

    columns = max((len(row) for row in rows), default=0)
    zooms = list(zoom) if isinstance(zoom, (list, tuple)) else [zoom] * columns
    if len(zooms) != columns or any(isinstance(z, bool) or not isinstance(z, int) or z < 1 for z in zooms):
        raise ValueError(f"zoom must be an integer of at least 1 per column ({columns}); got {zoom!r}")
    font, bold = _font(), _font(bold=True)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_width = lambda text, f=font: int(probe.textlength(text, font=f))  # noqa: E731
    widths = [max((_rgb(row[c]).shape[1] * zooms[c] for row in rows if c < len(row)), default=0) for c in range(columns)]
    heights = [max((_rgb(p).shape[0] * zooms[c] for c, p in enumerate(row)), default=0) for row in rows]
    widths = [max(w, text_width(column_labels[c]) if c < len(column_labels) else 0) for c, w in enumerate(widths)]
    label_width = max((text_width(label) for label in row_labels), default=0)
    label_width += (FONT_PX + _GAP if any(row_styles) else 0) + (_GAP * 2 if row_labels else 0)
    line = FONT_PX + 5
    notes = note.splitlines() if note else []
    top = _MARGIN + (line + _GAP if title else 0) + (line if column_labels else 0)
    width = 2 * _MARGIN + label_width + sum(widths) + _GAP * max(columns - 1, 0)
    width = max(width, 2 * _MARGIN + max((text_width(t) for t in [title, *notes] if t), default=0))
    height = top + sum(heights) + _GAP * max(len(rows) - 1, 0) + (_GAP + line * len(notes) if notes else 0) + _MARGIN
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((_MARGIN, _MARGIN), title, fill="#222222", font=bold)
    x0 = _MARGIN + label_width
    for c, label in enumerate(column_labels[:columns]):
        x = x0 + sum(widths[:c]) + _GAP * c
        draw.text((x, top - line), label, fill="#333333", font=font)
    y = top
    for r, row in enumerate(rows):
        if r < len(row_labels):
            x = _MARGIN
            name = row_styles[r] if r < len(row_styles) else None
            if name:
                mid = y + heights[r] // 2
                draw.rectangle((x, mid - FONT_PX // 2, x + FONT_PX - 2, mid + FONT_PX // 2 - 1), fill=style_of(name).colour)
                x += FONT_PX + _GAP
            draw.text((x, y + heights[r] // 2), row_labels[r], fill="#222222", font=font, anchor="lm")
        for c, picture in enumerate(row):
            array = _rgb(picture)
            zoomed = np.repeat(np.repeat(array, zooms[c], axis=0), zooms[c], axis=1)
            canvas.paste(Image.fromarray(np.ascontiguousarray(zoomed)), (x0 + sum(widths[:c]) + _GAP * c, y))
        y += heights[r] + _GAP
    for index, text in enumerate(notes):
        draw.text((_MARGIN, y + index * line), text, fill="#444444", font=font)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
