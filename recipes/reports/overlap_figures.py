"""The article's overlap figures from ``overlap_map``: kernels 3, 4, 5 at stride 2, stacks of 1 to 3 layers.

    python recipes/reports/overlap_figures.py            # a few seconds

Writes ``leaderboards/figures/overlap_1d.png`` (bars: how many input paths paint each output
position) and ``leaderboards/figures/overlap_2d.png`` (the same in 2-D, the outer product of the
1-D maps), one panel per (kernel, layers), titled with the max/min ratio (1 is even overlap).
Only the interior is drawn, where the pattern repeats; a window of 16 positions holds two periods
of a three-layer stack.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard._io import atomic_write_bytes
from lightning_checkerboard.cli import run_cli
from lightning_checkerboard.experiments import overlap_ratios
from lightning_checkerboard.functional import overlap_map

KERNELS = (3, 4, 5)
LAYERS = (1, 2, 3)
STRIDE = 2
WINDOW = 16


def plot_overlap(ndim: int, dpi: int = 80) -> bytes:
    """PNG bytes of the overlap maps, rows = kernels, columns = layers.

    Args:
        ndim: 1 (bar plots) or 2 (grey-scale maps, white = most paths).
        dpi: resolution.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ratios = overlap_ratios(KERNELS, LAYERS, stride=STRIDE, ndim=ndim)
    figure = Figure(figsize=(3.0 * len(LAYERS), (1.6 if ndim == 1 else 2.9) * len(KERNELS)), dpi=dpi)
    FigureCanvasAgg(figure)
    grid = figure.subplots(len(KERNELS), len(LAYERS), squeeze=False)
    for r, kernel in enumerate(KERNELS):
        for c, layers in enumerate(LAYERS):
            values = overlap_map(kernel, STRIDE, layers, ndim=ndim, in_size=2 * kernel + WINDOW)
            axes = grid[r][c]
            if ndim == 1:
                line = values[:WINDOW].numpy()
                axes.bar(range(len(line)), line, width=0.85, color="#4a6fa5")
                axes.set_ylim(0, line.max() * 1.1)
                axes.set_xticks([])
            else:
                # Each panel on its own scale starting at 0, so an even map reads uniformly grey-white.
                plane = values[:WINDOW, :WINDOW].numpy()
                axes.imshow(plane, cmap="gray", vmin=0, vmax=plane.max(), interpolation="nearest")
                axes.set_xticks([])
                axes.set_yticks([])
            layer_word = "layer" if layers == 1 else "layers"
            axes.set_title(f"k{kernel} s{STRIDE}, {layers} {layer_word}: max/min {ratios[kernel, layers]:.3g}",
                           fontsize=9)
    figure.suptitle(f"Overlap of stacked stride-{STRIDE} transposed convolutions ({ndim}-D)", fontsize=11)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="recipes/reports/overlap_figures.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("leaderboards/figures"), help="folder for the PNGs")
    args = parser.parse_args(argv)
    for ndim in (1, 2):
        path = atomic_write_bytes(args.out / f"overlap_{ndim}d.png", plot_overlap(ndim))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:]))
