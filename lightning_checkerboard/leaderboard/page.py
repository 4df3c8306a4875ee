"""The leaderboard's HTML page: a verdict above each table, a few columns, pictures at integer zoom.

Each table opens with a sentence made from its numbers (:func:`~lightning_checkerboard.leaderboard.summary.verdict`)
and shows rank, upsampler, the quality metric, the checkerboard reading, speed and pictures; every
other column waits behind the table's "more columns" button (and is in the CSV and JSON). A table
scrolls inside its own box, with its header and its first two columns (rank and upsampler) held in
place, so the page itself never scrolls sideways. Headers sort by mouse or keyboard (each is a
button; ``aria-sort`` says the order), the first press sorts in the column's better direction, and
"reset order" brings back the ranking. Pictures are drawn at an integer zoom of their pixels
(``image-rendering: pixelated``), each a link to its run's full grid at native resolution.

The page carries its stylesheet and script inline (the package's ``leaderboard/assets/``) and no
external resource, so it works opened from the file system; its Content-Security-Policy lets no
script run but its own. Every field from a record is escaped.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
from collections.abc import Sequence
from importlib import resources

from lightning_checkerboard.leaderboard.aggregate import Leaderboard, Row, Table
from lightning_checkerboard.leaderboard.escape import href
from lightning_checkerboard.leaderboard.formatting import NBSP, stat_text
from lightning_checkerboard.leaderboard.palette import style_of
from lightning_checkerboard.leaderboard.summary import (
    BOUNDS,
    GLOSSARY,
    constant_caption,
    constant_keys,
    decimals,
    default_keys,
    heading,
    metric_keys,
    reading,
    settings_text,
    verdict,
)
from lightning_checkerboard.leaderboard.thumbnails import ERROR_GAIN, GRID_COLUMNS, picture_sides
from lightning_checkerboard.metrics.directions import METRIC_INFO
from lightning_checkerboard.records import ResultRecord

__all__ = ["CROP_ZOOM", "TILE_BOX", "html_page"]

#: The box a sample tile fills: its side times the largest integer zoom that fits (at least 2).
TILE_BOX = 64
#: The zoom of the strongest-pattern crop.
CROP_ZOOM = 4
_E = html.escape


def _asset(name: str) -> str:
    """A file of the package's ``leaderboard/assets/`` folder, as text."""
    return (resources.files("lightning_checkerboard.leaderboard") / "assets" / name).read_text(encoding="utf-8")


@functools.cache
def page_assets() -> tuple[str, str, str]:
    """The page's stylesheet, its script, and the Content-Security-Policy that lets that script run.

    Both are written inline, each starting on a line of its own. Only the page's own script may run:
    the policy holds the SHA-256 of the script element's exact text, so an injected inline script or
    event handler is refused by the browser even if a field ever slipped past escaping.
    """
    css = "\n" + _asset("leaderboard.css")
    script = "\n" + _asset("leaderboard.js")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return css, script, f"script-src 'sha256-{digest}'; object-src 'none'; base-uri 'none'"


def tile_zoom(side: int) -> int:
    """The integer zoom of a ``side``-pixel tile: the largest that fits :data:`TILE_BOX`, at least 2."""
    return max(2, TILE_BOX // max(side, 1))


def _rank_cell(row: Row) -> str:
    if row.learned is False:
        return '<td class="rank" data-value="">did not learn</td>'
    if row.rank is None:
        return '<td class="rank" data-value="">–</td>'
    title = ""
    if row.p_adjusted is not None:
        p = "p < 0.001" if row.p_adjusted < 0.001 else f"p = {row.p_adjusted:.3f}"
        title = f' title="Holm-adjusted {p} against the row it was compared with"'
    return f'<td class="rank num" data-value="{row.rank}"{title}>{row.rank}</td>'


def _metric_cell(table: Table, row: Row, key: str, more: bool) -> str:
    cls = "num more" if more else "num"
    stat = row.metrics.get(key)
    value = "" if stat is None else repr(stat.mean)
    if key in BOUNDS:
        r = reading(table, row, key)
        detail = " · ".join(f"<span>{_E(part)}</span>" for part in r.detail_parts())
        text = _E(r.main(NBSP)) + (f'<br><span class="detail">{detail}</span>' if detail else "")
        return f'<td class="{cls} reading" data-value="{value}">{text}</td>'
    text = stat_text(stat and stat.mean, stat and stat.std, decimals(table, key), NBSP) if stat else "–"
    return f'<td class="{cls}" data-value="{value}">{_E(text)}</td>'


def _picture(src: str, link: str, side: int, zoom: int, caption: str, title: str, kind: str) -> str:
    box = side * zoom
    return (f'<a href="{_E(link)}" title="{_E(title)}"><img class="{kind}" src="{_E(src)}" '
            f'width="{box}" height="{box}" alt="{_E(caption)}" data-zoom="{zoom}"></a>')


def _pictures_heading(table: Table) -> str:
    """What the pictures column holds, in its heading: ``seeds ×2 · strongest ×4 · error ×8``."""
    sides = picture_sides(table.image_size)
    window = "" if sides["tile"] == table.image_size else f" ({sides['tile']} px window)"
    text = f"seeds ×{tile_zoom(sides['tile'])}{window} · strongest ×{CROP_ZOOM}"
    return text + (f" · error ×{ERROR_GAIN}" if "target" in GRID_COLUMNS.get(table.task, ()) else "")


def _pictures_cell(table: Table, row: Row, assets: dict[str, dict[str, str]], strengths: dict[str, float]) -> str:
    sides = picture_sides(table.image_size)
    columns = " | ".join(GRID_COLUMNS.get(table.task, GRID_COLUMNS["gan"]))
    zoom = tile_zoom(sides["tile"])
    parts = []
    runs = [run for run in row.runs if "tile" in assets.get(run.run_id, {})]
    for run in runs:
        files = assets[run.run_id]
        title = f"seed {run.seed}: the full sample grid at native resolution (columns: {columns})"
        parts.append(_picture(files["tile"], files.get("samples", files["tile"]), sides["tile"], zoom,
                              f"s{run.seed} ×{zoom}", title, "samples"))
    if runs:
        strongest = max(runs, key=lambda run: strengths.get(run.run_id, 0.0))
        files = assets[strongest.run_id]
        if "crop" in files:
            parts.append(_picture(files["crop"], files.get("samples", files["crop"]), sides["crop"], CROP_ZOOM,
                                  f"s{strongest.seed} ×{CROP_ZOOM}",
                                  f"seed {strongest.seed}: the {sides['crop']}-pixel window with the strongest period-2 "
                                  "pattern; click for the full grid", "samples crop"))
        if "error" in files:
            parts.append(_picture(files["error"], files.get("samples", files["error"]), sides["error"], zoom,
                                  f"error ×{ERROR_GAIN}",
                                  f"seed {strongest.seed}: output − target ×{ERROR_GAIN} around mid-grey, over the "
                                  "first tile's window; click for the full grid", "samples error"))
    return f'<td class="pictures"><div class="pics">{"".join(parts)}</div></td>'


def _run_links(runs: Sequence[ResultRecord], assets: dict[str, dict[str, str]]) -> str:
    links = []
    for run in runs:
        label = _E(f"s{run.seed}:{run.run_id}")
        link = href((run.wandb or {}).get("url"))
        links.append(f'<a href="{link}" rel="noopener noreferrer">{label}</a>' if link else f"<code>{label}</code>")
        spectra = assets.get(run.run_id, {}).get("spectra")
        if spectra:
            links.append(f'<a href="{_E(spectra)}" title="spectra of seed {run.seed}">spectra</a>')
    return " ".join(links)


def _columns(table: Table) -> tuple[list[str], list[str]]:
    """The metric columns shown by default and those behind "more columns"."""
    shown = default_keys(table)
    constant = set(constant_keys(table))
    more = [key for key in metric_keys(table) if key not in shown and key not in constant]
    return shown, more


def _header(key: str, label: str, better: str | None, tip: str, more: bool = False, cls: str = "") -> str:
    classes = " ".join(c for c in (cls, "more" if more else "") if c)
    attr = f' class="{classes}"' if classes else ""
    if better is None:
        return f'<th{attr} title="{_E(tip)}">{_E(label)}</th>'
    return (f'<th{attr} aria-sort="none" data-better="{better}" title="{_E(tip)}">'
            f'<button type="button">{_E(label)}</button></th>')


def _direction(key: str) -> str:
    return "desc" if METRIC_INFO[key].higher_is_better else "asc"


def _table(table: Table, assets: dict[str, dict[str, str]], strengths: dict[str, float]) -> str:
    shown, more = _columns(table)
    baseline = table.primary is not None and any(row.baseline is not None for row in table.rows)
    head = [_header("rank", "rank", "asc", GLOSSARY["rank"], cls="rank"),
            _header("upsampler", "upsampler", "asc", GLOSSARY["upsampler"], cls="name")]
    head += [_header(key, heading(key), _direction(key), GLOSSARY.get(key, METRIC_INFO[key].label)) for key in shown]
    head.append(_header("pictures", _pictures_heading(table), None, GLOSSARY["pictures"], cls="pictures"))
    head += [_header(key, heading(key), _direction(key), GLOSSARY.get(key, METRIC_INFO[key].label), more=True)
             for key in more]
    if baseline:
        head.append(_header("baseline", f"baseline {METRIC_INFO[table.primary].label}", _direction(table.primary),
                            "The quality metric of the model before training, which a row must beat.", more=True))
    head += [_header("n", "n", "desc", "Finished runs averaged (one per seed).", more=True),
             _header("runs", "runs", None, "Each run (seed:id, a W&B link when online) and its spectra plot.",
                     more=True)]
    rows = []
    for index, row in enumerate(table.rows):
        style = style_of(row.upsampler)
        cells = [_rank_cell(row),
                 f'<td class="name" data-value="{_E(row.label)}">{style.svg()} <code>{_E(row.label)}</code></td>']
        cells += [_metric_cell(table, row, key, False) for key in shown]
        cells.append(_pictures_cell(table, row, assets, strengths))
        cells += [_metric_cell(table, row, key, True) for key in more]
        if baseline:
            base = row.baseline
            text = stat_text(base and base.mean, base and base.std, decimals(table, table.primary), NBSP)
            cells.append(f'<td class="num more" data-value="{"" if base is None else repr(base.mean)}">{_E(text)}</td>')
        cells.append(f'<td class="num more" data-value="{row.n}">{row.n}</td>')
        cells.append(f'<td class="more runs">{_run_links(row.runs, assets)}</td>')
        rows.append(f'<tr data-index="{index}">{"".join(cells)}</tr>')
    table_id = f"t-{table.key}"
    return (f'<div class="controls"><button type="button" class="toggle-more" aria-controls="{_E(table_id)}" '
            f'aria-expanded="false">more columns</button> <button type="button" class="reset-order" '
            f'aria-controls="{_E(table_id)}">reset order</button></div>'
            f'<div class="scroll" role="region" tabindex="0" aria-label="{_E(table.key)} table">'
            f'<table class="sortable" id="{_E(table_id)}" data-table="{_E(table.key)}"><thead><tr>{"".join(head)}'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def _ranking_note(table: Table) -> str:
    if table.primary is None:
        return "Unranked: no quality metric (FID, SWD, PSNR, SSIM) was recorded by every run."
    info = METRIC_INFO[table.primary]
    return (f"Ranked by {info.label} ({'higher' if info.higher_is_better else 'lower'} is better); rows share a rank "
            "unless Welch's t-test over seeds separates them at 95 % (Holm-adjusted). Mean ± sample std over seeds.")


def _glossary(keys: Sequence[str]) -> str:
    items = "".join(f"<dt>{_E(METRIC_INFO[key].label if key in METRIC_INFO else key)}</dt><dd>{_E(GLOSSARY[key])}</dd>"
                    for key in keys if key in GLOSSARY)
    return f'<h2>What the columns mean</h2><dl class="glossary">{items}</dl>'


def html_page(board: Leaderboard, assets: dict[str, dict[str, str]], command: str,
              scatters: dict[str, str], strengths: dict[str, float] | None = None,
              scatter_size: tuple[int, int] = (720, 460)) -> str:
    """The page, as text.

    Args:
        board: the leaderboard.
        assets: each run's pictures, relative paths by kind (see
            :func:`~lightning_checkerboard.leaderboard.thumbnails.copy_thumbnails`).
        command: the build command, printed on the page.
        scatters: each ranked table's scatter PNG, relative path by table key.
        strengths: each run's strongest local period-2 amplitude: which seed's crop is shown.
        scatter_size: the scatter PNGs' size in pixels (drawn at exactly that size).
    """
    strengths = strengths or {}
    css, script, csp = page_assets()
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f'<meta http-equiv="Content-Security-Policy" content="{csp}">', '<link rel="icon" href="data:,">',
             "<title>lightning-checkerboard leaderboard</title>", f"<style>{css}</style></head><body>",
             "<h1>lightning-checkerboard leaderboard</h1>",
             f'<p class="meta">Generated by <code>{_E(command)}</code>. Each table compares upsamplers trained the '
             "same way; the sentence above it says what the numbers say. ↓ lower is better, ↑ higher is better; "
             "press a column heading to sort (first in its better direction). The glossary at the end explains "
             "every column.</p>"]
    used: list[str] = ["rank", "upsampler"]
    for table in board.tables:
        shown, more = _columns(table)
        used += [key for key in shown + more + constant_keys(table) if key not in used]
        parts.append(f'<section class="board"><h2 id="{_E(table.key)}">{_E(table.task)} · {_E(table.dataset)} · '
                     f"{table.image_size}×{table.image_size}</h2>")
        parts.append(f'<p class="verdict">{_E(verdict(table))}</p>')
        caption = " ".join(t for t in (_ranking_note(table), constant_caption(table)) if t)
        parts.append(f'<p class="meta">{_E(caption)}</p>')
        parts.append(_table(table, assets, strengths))
        parts.append(f'<details class="meta"><summary>Training budget and measurement protocol</summary>'
                     f"<p>Budget: {_E(settings_text(table.budget))}<br>Protocol: {_E(settings_text(table.protocol))}"
                     f"<br>Table {_E(table.key)}</p></details>")
        if table.key in scatters:
            parts.append(f'<img class="scatter" src="{_E(scatters[table.key])}" width="{scatter_size[0]}" '
                         f'height="{scatter_size[1]}" alt="quality against checkerboard score, a point per seed, '
                         'each row in its upsampler\'s colour">')
        parts.append("</section>")
    if board.excluded:
        parts.append("<h2>Not averaged (did not finish)</h2>")
        columns = ["run", "task", "dataset", "size", "upsampler", "seed", "status", "steps", "message"]
        body = "".join(
            "<tr>" + "".join(f"<td>{_E(str(v))}</td>" for v in (
                r.run_id, r.task, r.dataset, r.image_size, r.upsampler, r.seed, r.status,
                f"{r.steps}/{r.max_steps}", r.message[:200])) + "</tr>"
            for r in board.excluded)
        parts.append('<div class="scroll" role="region" tabindex="0" aria-label="runs not averaged">'
                     '<table id="excluded"><thead><tr>' + "".join(f"<th>{c}</th>" for c in columns)
                     + f"</tr></thead><tbody>{body}</tbody></table></div>")
    parts.append(_glossary(used + ["pictures"]))
    parts.append(f"<script>{script}</script></body></html>")
    return "\n".join(parts) + "\n"
