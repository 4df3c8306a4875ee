"""``audit``: one row per upsampling site of a model, with the grid pattern its output carries.

A site's output is a stack of feature maps, not an image in [0, 1], so it is scored like a gradient:
every ``(image, channel)`` map is one sample, and maps that are exactly constant (a dead ReLU channel)
are left out. The grid pattern is measured in a Hann-windowed spectrum
(:class:`~lightning_checkerboard.metrics.GradientCheckerboardScore`), which weights a map's centre more
than its border; each map is therefore normalised to zero mean and unit RMS *under the same window*, so
the score is the windowed RMS of the grid pattern as a fraction of the windowed RMS of the map, in
[0, 1]: 0 for none, 1 for a pure checkerboard (0.9 to 1 for a checkerboard under a smooth envelope, whose
spectrum spreads a little beyond the bins measured), whatever the envelope weights. The upper bound is
clipped at 1, the whole. The periods measured are those the site's own stride paints (2 for a stride-2
site, 2 and 4 for stride 4); sites whose stride is not a power of two, or whose maps are smaller than
``4 * stride``, are listed without a score, and a site whose output holds NaN or infinity reads NaN.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lightning_checkerboard.adapt.sites import search_upsampling_sites
from lightning_checkerboard.functional.checkerboard import DEFAULT_ALPHA, DEFAULT_Z
from lightning_checkerboard.functional.spectrum import hann_window_2d

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
        score: the share of the output's (windowed) RMS in grid patterns (0 to 1), ``None`` if not
            scored, NaN if the output holds NaN or infinity.
        upper: the 95 % upper bound of ``score`` (at ``1 - alpha``, at most 1), or ``None`` / NaN likewise.
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
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
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
            lines.append("score: share of the site output's RMS in grid patterns (0 none, 1 a pure checkerboard), "
                         "both weighted by the same Hann window.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``model``, ``input_shape``, ``alpha`` and ``rows`` (a list of dicts)."""
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "alpha": self.alpha,
            "rows": [{**asdict(row), "output_shape": list(row.output_shape) if row.output_shape else None,
                      # JSON has no NaN: a NaN score is null, and its note says why.
                      "score": _json_number(row.score), "upper": _json_number(row.upper)}
                     for row in self.rows],
        }


def _json_number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _window_normalised(maps: Tensor) -> Tensor:
    """Each map minus its mean, divided by its RMS under the Hann window the spectrum uses."""
    x = maps - maps.mean(dim=(-2, -1), keepdim=True)
    window = hann_window_2d(*x.shape[-2:], dtype=x.dtype, device=x.device).square()
    energy = (window * x.square()).sum(dim=(-2, -1), keepdim=True) / window.sum()
    return x / energy.sqrt()


def _window_share_metric(levels: int, z: float, alpha: float) -> Any:
    # Imported here so that importing the package does not import torchmetrics.
    from lightning_checkerboard.functional._validation import check_image_batch
    from lightning_checkerboard.metrics.checkerboard import GradientCheckerboardScore

    class WindowShareScore(GradientCheckerboardScore):
        """The gradient score, with maps normalised under the spectrum's window instead of flat."""

        def _prepare(self, maps: Tensor) -> Tensor:
            check_image_batch(maps, self.levels, name="maps")
            return _window_normalised(maps.detach())

    return WindowShareScore(levels=levels, z=z, alpha=alpha)


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
    maps = output[..., : height - height % period, : width - width % period].detach()
    maps = maps.to(torch.float64 if maps.dtype == torch.float64 else torch.float32)
    if not bool(torch.isfinite(maps).all()):
        return math.nan, math.nan, "its output holds NaN or infinity"
    maps = maps.reshape(-1, 1, *maps.shape[-2:])
    centred = maps - maps.mean(dim=(-2, -1), keepdim=True)
    window = hann_window_2d(*maps.shape[-2:], dtype=maps.dtype, device=maps.device)
    # A map that is constant (or nonzero only where the window is zero) has no pattern to measure.
    maps = maps[(centred * window).flatten(1).abs().amax(dim=1) > 0]
    if maps.shape[0] == 0:
        return 0.0, 0.0, "every output map is constant"
    metric = _window_share_metric(levels, z, alpha).to(maps.device)
    metric.update(maps)
    diagnostics = metric.diagnostics()
    return float(diagnostics["score"]), min(float(diagnostics["upper"]), 1.0), ""


def _meta_tensor(model: nn.Module, values: Any) -> str | None:
    from torch.utils._pytree import tree_flatten

    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_meta:
            return f"the model's {name!r}"
    for value in tree_flatten(values)[0]:
        if isinstance(value, Tensor) and value.is_meta:
            return "an input"
    return None


@torch.no_grad()
def audit(
    model: nn.Module,
    example_input: Tensor,
    *args: Any,
    z: float = DEFAULT_Z,
    alpha: float = DEFAULT_ALPHA,
    **kwargs: Any,
) -> AuditReport:
    """List every upsampling site of ``model`` with its geometry and the grid pattern of its output.

    Runs ``model(example_input, *args, **kwargs)`` once, without grad and in the mode the model is in
    (buffers such as BatchNorm statistics are restored afterwards), and finds the sites on that run:
    module sites through forward hooks, calls written in a ``forward`` (``F.interpolate``,
    ``F.pixel_shuffle``, ...) through a ``TorchFunctionMode``, so forwards that ``torch.fx`` cannot
    trace are covered too (see :func:`~lightning_checkerboard.adapt.sites.search_upsampling_sites`); sites
    the run did not reach are listed without a score. The hooks are removed afterwards. The score of
    each site is described in this module's docstring; the more images and channels, the tighter its
    bound.

    Args:
        model: any ``nn.Module``.
        example_input: the model's first input, e.g. a noise batch ``(B, latent_dim, 1, 1)``.
        args: the model's other positional inputs (a UNet's timestep, ...).
        z: detection margin of the score, in standard errors.
        alpha: error rate of the upper bound (0.05: 95 %).
        kwargs: the model's keyword inputs (``encoder_hidden_states=...``); ``z`` and ``alpha`` are the
            audit's own.

    Returns:
        An :class:`AuditReport`: ``print(report)`` shows a table, ``report.to_dict()`` is JSON-ready.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module`` or ``example_input`` not a tensor.
        ValueError: if the model or an input is on the meta device (no values to run: load the weights
            first).

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
    meta = _meta_tensor(model, (example_input, args, kwargs))
    if meta is not None:
        raise ValueError(f"cannot audit {type(model).__name__}: {meta} is on the meta device, which holds no "
                         "values to run; load the weights first (e.g. to_empty() then load_state_dict()).")
    search = search_upsampling_sites(model, (example_input, *args), kwargs)
    rows = []
    for site in search.sites:
        output = search.outputs.get(site.path)
        levels = _levels(site.stride)
        score, upper, note = None, None, ""
        if not isinstance(output, Tensor):
            note = "it did not run on the example input"
            output = None
        elif output.dim() != 4:
            note = f"its output has shape {tuple(output.shape)}, not (B, C, H, W)"
        elif levels is None:
            note = f"its stride {site.stride} is not a power of two" if site.stride else "its stride is not one integer"
        else:
            score, upper, note = _score(output, levels, z, alpha)
        rows.append(AuditRow(site.path, site.kind, site.kernel, site.stride, site.overlap, site.fusable, score, upper,
                             tuple(output.shape) if output is not None else None, note))
    return AuditReport(type(model).__name__, tuple(example_input.shape), alpha, tuple(rows))
