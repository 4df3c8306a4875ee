"""``audit``: one row per upsampling site of a model, with the grid pattern its output carries.

A site's output is a stack of feature maps, not an image in [0, 1], so it is scored like a gradient:
every ``(image, channel)`` map is one sample, normalised to zero mean and unit RMS
(:class:`~lightning_checkerboard.metrics.GradientCheckerboardScore`), and maps that are exactly constant
(a dead ReLU channel) are left out. The score is then the RMS of the site's grid pattern as a fraction of
the RMS of its (normalised) feature maps: 0 for none, 1 for a pure checkerboard. The periods measured are
those the site's own stride paints (2 for a stride-2 site, 2 and 4 for stride 4); sites whose stride is
not a power of two, or whose maps are smaller than ``4 * stride``, are listed without a score.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lightning_checkerboard.adapt.sites import UpsamplingSite, find_upsampling_sites
from lightning_checkerboard.functional.checkerboard import DEFAULT_ALPHA, DEFAULT_Z

__all__ = ["AuditReport", "AuditRow", "audit"]


@dataclass(frozen=True)
class AuditRow:
    """One upsampling site of an audited model.

    Attributes:
        path: the site's module path.
        kind: ``transposed_conv``, ``pixel_shuffle``, ``resize_conv``, ... (see
            :class:`~lightning_checkerboard.adapt.sites.UpsamplingSite`).
        kernel: the convolution's kernel size, or ``None``.
        stride: the upsampling factor, or ``None``.
        overlap: max/min overlap ratio in 2-D (1.0: even), or ``None``.
        fusable: ``"yes"``, ``"no"`` or ``"fused"`` (already fused).
        score: the share of the output's RMS in grid patterns (0 to 1), or ``None`` if not scored.
        upper: the 95 % upper bound of ``score`` (at ``1 - alpha``), or ``None``.
        output_shape: the site's output shape on the example input (``None`` if it did not run).
        note: why a site has no score (empty otherwise).
    """

    path: str
    kind: str
    kernel: int | None
    stride: int | None
    overlap: float | None
    fusable: str
    score: float | None
    upper: float | None
    output_shape: tuple[int, ...] | None
    note: str = ""


def _cell(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, tuple):
        return "×".join(map(str, value))
    return str(value)


@dataclass(frozen=True)
class AuditReport:
    """What :func:`audit` found: one :class:`AuditRow` per site, printable as a table.

    Attributes:
        model: the audited model's class name.
        input_shape: the example input's shape.
        alpha: error rate of the ``upper`` column.
        rows: one row per site, in module order.
    """

    model: str
    input_shape: tuple[int, ...]
    alpha: float
    rows: tuple[AuditRow, ...]

    _COLUMNS = ("path", "kind", "kernel", "stride", "overlap", "fusable", "score", "upper", "output_shape")

    def __len__(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        header = ["site", "kind", "kernel", "stride", "overlap max/min", "fusable", "score",
                  f"{100 * (1 - self.alpha):g}% upper", "output"]
        body = [[_cell(getattr(row, c), 2 if c == "overlap" else 3) for c in self._COLUMNS] for row in self.rows]
        widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)]

        def line(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

        title = f"{self.model} on input {_cell(self.input_shape)}: {len(self.rows)} upsampling site(s)"
        lines = [title, line(header), line(["-" * w for w in widths]), *map(line, body)]
        lines += [f"{row.path}: {row.note}" for row in self.rows if row.note]
        if self.rows:
            lines.append("score: share of the site output's RMS in grid patterns (0 none, 1 a pure checkerboard).")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``model``, ``input_shape``, ``alpha`` and ``rows`` (a list of dicts)."""
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "alpha": self.alpha,
            "rows": [{**asdict(row), "output_shape": list(row.output_shape) if row.output_shape else None}
                     for row in self.rows],
        }


def _levels(stride: int | None) -> int | None:
    if stride is None or stride < 2 or stride & (stride - 1):
        return None
    return int(math.log2(stride))


def _score(output: Tensor, levels: int, z: float, alpha: float) -> tuple[float | None, float | None, str]:
    period = 2**levels
    height, width = output.shape[-2:]
    if min(height, width) < 4 * period:
        side = 4 * period
        return None, None, f"its {height}×{width} output is smaller than {side}×{side}, too small to score"
    # Never resize (that makes or destroys grid patterns): crop to whole periods.
    maps = output[..., : height - height % period, : width - width % period].detach().float()
    maps = maps.reshape(-1, 1, *maps.shape[-2:])
    maps = maps[maps.flatten(1).var(dim=1, unbiased=False) > 0]
    if maps.shape[0] == 0:
        return 0.0, 0.0, "every output map is constant"
    # Imported here so that importing the package does not import torchmetrics.
    from lightning_checkerboard.metrics.checkerboard import GradientCheckerboardScore

    metric = GradientCheckerboardScore(levels=levels, z=z, alpha=alpha).to(maps.device)
    metric.update(maps)
    diagnostics = metric.diagnostics()
    return float(diagnostics["score"]), float(diagnostics["upper"]), ""


@torch.no_grad()
def audit(
    model: nn.Module, example_input: Tensor, *, z: float = DEFAULT_Z, alpha: float = DEFAULT_ALPHA
) -> AuditReport:
    """List every upsampling site of ``model`` with its geometry and the grid pattern of its output.

    Runs ``model(example_input)`` once, without grad and in the mode the model is in (buffers such as
    BatchNorm statistics are restored afterwards), with a forward hook on the last module of each site (see
    :func:`~lightning_checkerboard.adapt.sites.find_upsampling_sites`); the hooks are removed afterwards.
    The score of each site is described in this module's docstring; the more images and channels, the
    tighter its bound.

    Args:
        model: any ``nn.Module``.
        example_input: what ``model`` takes, e.g. a noise batch ``(B, latent_dim, 1, 1)``.
        z: detection margin of the score, in standard errors.
        alpha: error rate of the upper bound (0.05: 95 %).

    Returns:
        An :class:`AuditReport`: ``print(report)`` shows a table, ``report.to_dict()`` is JSON-ready.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module`` or ``example_input`` not a tensor.

    Example:
        >>> from lightning_checkerboard import audit
        >>> from lightning_checkerboard.models.dcgan import DCGANGenerator
        >>> torch.manual_seed(0) and None
        >>> report = audit(DCGANGenerator("deconv_k3,nearest_conv", image_size=16), torch.randn(4, 100, 1, 1))
        >>> [(row.path, row.kind, row.overlap, row.fusable) for row in report.rows]
        [('stages.0.0', 'transposed_conv', 4.0, 'no'), ('stages.1.0', 'resize_conv', 1.0, 'fused')]
        >>> report.rows[0].score > 0.1, report.rows[1].score
        (True, 0.0)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    if not isinstance(example_input, Tensor):
        raise TypeError(f"example_input must be a torch.Tensor; got {type(example_input).__name__}.")
    sites: list[UpsamplingSite] = find_upsampling_sites(model)
    outputs: dict[str, Tensor] = {}
    handles = []
    for site in sites:
        def keep(module: nn.Module, args: Any, output: Any, path: str = site.path) -> None:
            if isinstance(output, Tensor):
                outputs[path] = output.detach()

        handles.append(model.get_submodule(site.modules[-1]).register_forward_hook(keep))
    # A forward in train mode updates BatchNorm statistics; the audit puts every buffer back.
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    try:
        model(example_input)
    finally:
        for handle in handles:
            handle.remove()
        for name, buffer in model.named_buffers():
            buffer.copy_(buffers[name])

    rows = []
    for site in sites:
        output = outputs.get(site.path)
        levels = _levels(site.stride)
        score, upper, note = None, None, ""
        if output is None:
            note = "it did not run on the example input"
        elif output.dim() != 4:
            note = f"its output has shape {tuple(output.shape)}, not (B, C, H, W)"
        elif levels is None:
            note = f"its stride {site.stride} is not a power of two"
        else:
            score, upper, note = _score(output, levels, z, alpha)
        rows.append(AuditRow(site.path, site.kind, site.kernel, site.stride, site.overlap, site.fusable, score, upper,
                             tuple(output.shape) if output is not None else None, note))
    return AuditReport(type(model).__name__, tuple(example_input.shape), alpha, tuple(rows))
