"""Every fenced ``python`` block in README.md and on the documentation site's pages (docs/) runs as written.

Each block runs on its own, in a fresh namespace, with a temporary directory as the working
directory and the upsampler registry restored afterwards (a block may register a layer). Tracebacks
point at the page's own line numbers.

A block opts out only when its info string says so: ```` ```python no-run ```` for a fragment that
cannot run on its own (keep these rare), ```` ```python slow ```` for one that takes more than a few
seconds (it then runs with ``-m slow``).
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from lightning_checkerboard.upsamplers import registry

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def pages() -> list[Path]:
    """README.md and every Markdown page of the site except the generated ones (docs/leaderboards)."""
    site = sorted(path for path in DOCS.rglob("*.md") if path.relative_to(DOCS).parts[0] != "leaderboards")
    return [README, *site]
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")
_OPT_OUTS = {"no-run", "slow"}


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, the words after it, the line of its first code line, and the code."""

    language: str
    flags: frozenset[str]
    line: int
    code: str
    section: str
    page: Path = README


def _closes(line: str, fence: str) -> bool:
    """Whether ``line`` closes a block opened by ``fence``: only fence characters, at least as many."""
    stripped = line.strip()
    return stripped.startswith(fence) and not stripped.strip(fence[0])


def fenced_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown ``text``, in order, each with the heading it sits under."""
    blocks: list[Block] = []
    lines = text.splitlines()
    section, index = "", 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        opening = _FENCE.match(line)
        if opening is None:
            index += 1
            continue
        fence, words = opening["fence"], opening["info"].split()
        body, index = [], index + 1
        while index < len(lines) and not _closes(lines[index], fence):
            body.append(lines[index])
            index += 1
        first_code_line = index - len(body) + 1
        language = words[0].lower() if words else ""
        blocks.append(Block(language, frozenset(words[1:]), first_code_line, "\n".join(body), section))
        index += 1  # past the closing fence
    return blocks


def _python_blocks() -> list[Block]:
    return [dataclasses.replace(block, page=page) for page in pages()
            for block in fenced_blocks(page.read_text(encoding="utf-8")) if block.language in ("python", "py")]


def _params() -> list:
    params, seen = [], Counter()
    for block in _python_blocks():
        marks = [pytest.mark.slow] if "slow" in block.flags else []
        if "no-run" in block.flags:
            marks.append(pytest.mark.skip(reason=f"{block.page.name}:{block.line} is marked no-run"))
        # ids by page and section, so they stay put when other sections grow
        page = block.page.relative_to(ROOT).with_suffix("").as_posix()
        slug = page + ":" + (re.sub(r"[^a-z0-9]+", "-", block.section.lower()).strip("-") or "top")
        seen[slug] += 1
        params.append(pytest.param(block, id=f"{slug}-{seen[slug]}", marks=marks))
    return params


def test_the_block_parser_reads_fences_info_strings_and_sections():
    text = "# A\n\n```python no-run\nx = 1\n```\n\n## B\n\n````python\nprint('```')\n````\n\n```bash\nls\n```\n"
    blocks = fenced_blocks(text)
    assert [(b.language, set(b.flags), b.line, b.code, b.section) for b in blocks] == [
        ("python", {"no-run"}, 4, "x = 1", "A"),
        ("python", set(), 10, "print('```')", "B"),
        ("bash", set(), 14, "ls", "B"),
    ]


def test_the_pages_have_python_blocks_and_only_known_opt_outs():
    blocks = _python_blocks()
    assert len(blocks) >= 4
    assert any(block.page == README for block in blocks)
    assert any(block.page.is_relative_to(DOCS / "guides") for block in blocks)
    for block in blocks:
        unknown = block.flags - _OPT_OUTS
        assert not unknown, f"{block.page.name}:{block.line}: unknown words after ```python: {sorted(unknown)}"


@pytest.fixture
def restored_registry():
    saved = dict(registry._registry)
    yield
    registry._registry.clear()
    registry._registry.update(saved)


@pytest.mark.parametrize("block", _params())
def test_readme_python_block_runs(block: Block, tmp_path, monkeypatch, restored_registry):
    monkeypatch.chdir(tmp_path)
    # Padding keeps the page's line numbers in the traceback of a failing block.
    source = "\n" * (block.line - 1) + block.code
    exec(compile(source, str(block.page), "exec"), {"__name__": "__readme__"})  # noqa: S102
