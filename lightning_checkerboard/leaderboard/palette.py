"""One colour and one marker shape per upsampler, the same on the page, in the scatter plots and in figures.

The colours are Okabe and Ito's colour-blind-safe set (less its yellow, too faint on white) with three
of Paul Tol's to reach ten, each registered upsampler has its own pair of colour and marker, and a
name the registry does not know (a comma list of stages, a plug-in) gets a pair from a hash of its
text: stable from build to build, whatever else the table holds. Reading an upsampler's style never
depends on the order of rows, so ``dysample`` is the same colour in every table and every figure.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["COLOURS", "MARKERS", "Style", "style_of"]

#: Colour-blind-safe colours, as ``#rrggbb``.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#882255",
           "#999933", "#44AA99")
#: Matplotlib marker codes, each with the SVG path of the same shape in a box from -1 to 1.
MARKERS = {
    "o": "M0,-1A1,1 0 1,1 0,1A1,1 0 1,1 0,-1Z",
    "s": "M-0.85,-0.85H0.85V0.85H-0.85Z",
    "^": "M0,-1L1,0.8H-1Z",
    "D": "M0,-1L1,0L0,1L-1,0Z",
    "v": "M0,1L1,-0.8H-1Z",
    "P": "M-0.35,-1H0.35V-0.35H1V0.35H0.35V1H-0.35V0.35H-1V-0.35H-0.35Z",
    "X": "M-1,-0.6L-0.6,-1L0,-0.4L0.6,-1L1,-0.6L0.4,0L1,0.6L0.6,1L0,0.4L-0.6,1L-1,0.6L-0.4,0Z",
    "*": "M0,-1L0.24,-0.33L0.95,-0.31L0.38,0.12L0.59,0.81L0,0.4L-0.59,0.81L-0.38,0.12L-0.95,-0.31L-0.24,-0.33Z",
    "h": "M0,-1L0.87,-0.5V0.5L0,1L-0.87,0.5V-0.5Z",
    "<": "M-1,0L0.8,-1V1Z",
}
_MARKER_CODES = tuple(MARKERS)

# The registered upsamplers, in the order that gives them the palette's entries (new ones go last).
_REGISTERED = ("nearest_conv", "deconv", "bilinear_conv", "pixel_shuffle", "pixel_shuffle_icnr", "deconv_k3",
               "deconv_blur", "dysample", "carafe", "bilinear_additive")


@dataclass(frozen=True)
class Style:
    """How one upsampler is drawn.

    Attributes:
        colour: ``#rrggbb``.
        marker: a matplotlib marker code (a key of :data:`MARKERS`).
    """

    colour: str
    marker: str

    @property
    def rgb(self) -> tuple[int, int, int]:
        """The colour as 8-bit ``(r, g, b)``."""
        return tuple(int(self.colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]

    def svg(self, size: int = 12) -> str:
        """An inline SVG of the marker in its colour, ``size`` pixels square (no script, no links)."""
        return (f'<svg class="mark" width="{size}" height="{size}" viewBox="-1.1 -1.1 2.2 2.2" aria-hidden="true">'
                f'<path d="{MARKERS[self.marker]}" fill="{self.colour}"/></svg>')


def style_of(upsampler: str) -> Style:
    """The colour and marker of ``upsampler`` (a registry name or any spec text).

    Example:
        >>> style_of("deconv") == style_of("deconv"), style_of("deconv") != style_of("nearest_conv")
        (True, True)
        >>> style_of("nearest_conv").colour
        '#0072B2'
    """
    if upsampler in _REGISTERED:
        index = _REGISTERED.index(upsampler)
        return Style(COLOURS[index % len(COLOURS)], _MARKER_CODES[index % len(_MARKER_CODES)])
    digest = hashlib.sha1(upsampler.encode("utf-8", "replace")).digest()
    return Style(COLOURS[digest[0] % len(COLOURS)], _MARKER_CODES[digest[1] % len(_MARKER_CODES)])
