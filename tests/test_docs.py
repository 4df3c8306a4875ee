"""The docs stay true: every command they quote runs, every number they quote from leaderboards/ is there.

- Every ``python recipes/….py``, ``python -m lightning_checkerboard…`` and ``lightning-checkerboard
  COMMAND`` quoted in README.md, on the site's pages (docs/) or in a generated page's "regenerate
  with" line (leaderboards/*.md) names a script or command that exists, and its ``--help`` exits 0.
  All of them run in one child interpreter, each as ``python`` would run it (``__main__``, its own
  folder first on ``sys.path``), so the check costs one start-up.
- A paragraph that links to a page of leaderboards/ and quotes a number (``11.78``, ``0.96–1.02×``,
  ``10.2 %``) quotes one that page holds, rounded as written, or one of the page's own JSON, or, for a
  leaderboard table (``gan-photos.md``), of the leaderboard's ``leaderboard.json``. Numbers in code
  (``--ema-decay 0.999``) are examples, not quotes. A number that is not in the page belongs in a
  sentence that does not link to it, or the sentence links and leaves the number to the page.
- A signature the prose writes out (``replace_upsamplers(model, upsampler, example_input=None)``) for a
  function the package exports names its parameters in the function's order, with its defaults.
- Every public module and subpackage of ``lightning_checkerboard`` has a reference page, and every
  class and function it exports (``__all__``) has a docstring for that page to show.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import subprocess
import sys
import textwrap
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from test_readme import fenced_blocks, pages

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LEADERBOARDS = ROOT / "leaderboards"

_SCRIPT = re.compile(r"\bpython3? (recipes/[\w/]+\.py)\b")
_MODULE = re.compile(r"\bpython3? -m (lightning_checkerboard(?:\.\w+)*)\b")
_CONSOLE = re.compile(r"(?<![\w/.\[-])lightning-checkerboard ([a-z][a-z_-]*)\b")
_LINK = re.compile(r"\]\((?:\.\./)*leaderboards/([\w.-]+\.md)(?:#[\w-]*)?\)")
_NUMBER = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")
_FILE_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\d])")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+\1")


def _texts() -> dict[Path, str]:
    texts = {page: page.read_text(encoding="utf-8") for page in pages()}
    texts.update({page: page.read_text(encoding="utf-8") for page in sorted(LEADERBOARDS.glob("*.md"))})
    return texts


def quoted_commands(text: str) -> set[tuple[str, str]]:
    """The commands a Markdown ``text`` quotes: ``("script", path)``, ``("module", name)``, ``("console", name)``.

    Example:
        >>> sorted(quoted_commands("run `python recipes/gan.py --seed 1` then lightning-checkerboard score x/"))
        [('console', 'score'), ('script', 'recipes/gan.py')]
    """
    found = {("script", m) for m in _SCRIPT.findall(text)}
    found |= {("module", m) for m in _MODULE.findall(text)}
    found |= {("console", m) for m in _CONSOLE.findall(text)}
    return found


def _all_commands() -> dict[tuple[str, str], list[str]]:
    commands: dict[tuple[str, str], list[str]] = {}
    for page, text in _texts().items():
        for command in quoted_commands(text):
            commands.setdefault(command, []).append(page.relative_to(ROOT).as_posix())
    return commands


def test_the_pages_quote_commands_of_every_kind():
    kinds = {kind for kind, _ in _all_commands()}
    assert kinds == {"script", "module", "console"}


def test_every_quoted_script_exists():
    missing = {name: where for (kind, name), where in _all_commands().items()
               if kind == "script" and not (ROOT / name).is_file()}
    assert not missing, f"quoted scripts that do not exist (and where): {missing}"


# The child runs each command's --help as `python` would and prints {command: exit status}.
_CHILD = textwrap.dedent("""
    import contextlib, io, json, runpy, sys
    results = {}
    for kind, name in json.loads(sys.argv[1]):
        argv0 = sys.argv[:]
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                try:
                    if kind == "script":
                        sys.argv = [name, "--help"]
                        sys.path.insert(0, str(__import__("pathlib").Path(name).resolve().parent))
                        runpy.run_path(name, run_name="__main__")
                    elif kind == "module":
                        sys.argv = [name, "--help"]
                        runpy.run_module(name, run_name="__main__", alter_sys=True)
                    else:
                        from lightning_checkerboard.console import main
                        status = main([name, "--help"])
                        raise SystemExit(status)
                    code = 0
                except SystemExit as exit:
                    code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        except BaseException as error:  # reported, not raised: the other commands still run
            code = f"{type(error).__name__}: {error}"
        finally:
            sys.argv = argv0
        results[f"{kind} {name}"] = code
    print(json.dumps(results))
""")


def _help_statuses(commands: list[tuple[str, str]]) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(commands)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    statuses = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(statuses) == len(commands)
    return statuses


def test_every_quoted_command_answers_help_with_exit_status_0():
    commands = sorted(command for command in _all_commands() if command[0] != "script"
                      or (ROOT / command[1]).is_file())
    failed = {command: status for command, status in _help_statuses(commands).items() if status != 0}
    assert not failed, f"--help did not exit 0: {failed}"


def test_the_help_check_reports_commands_that_do_not_answer(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import sys\nsys.exit(3)\n", encoding="utf-8")
    statuses = _help_statuses([("console", "no_such_command"), ("module", "lightning_checkerboard.no_such"),
                               ("script", str(broken))])
    assert statuses["console no_such_command"] == 2
    assert str(statuses["module lightning_checkerboard.no_such"]).startswith("ImportError")
    assert statuses[f"script {broken}"] == 3


def _paragraphs(text: str) -> list[tuple[int, str]]:
    """The prose of a Markdown ``text`` by paragraph (a table row, a list item's block), code blocks left out."""
    code = {block.line + offset for block in fenced_blocks(text) for offset in range(-1, block.code.count("\n") + 2)}
    paragraphs, lines, start = [], [], 0
    for number, line in enumerate(text.splitlines(), 1):
        if number in code or not line.strip():
            if lines:
                paragraphs.append((start, " ".join(lines)))
            lines = []
            continue
        start = start if lines else number
        lines.append(line)
    if lines:
        paragraphs.append((start, " ".join(lines)))
    return paragraphs


def _roundings(text: str) -> set[str]:
    """Every way a number in ``text`` can be quoted: rounded to fewer decimals, or a share as a percentage."""
    found = set()
    for match in _FILE_NUMBER.findall(text):
        value = Decimal(match)
        decimals = max(0, -value.as_tuple().exponent)
        for shown, places in ((value, decimals), (value * 100, max(0, decimals - 2))):
            for digits in range(places + 1):
                for rounding in (ROUND_HALF_UP, ROUND_HALF_EVEN):
                    found.add(str(shown.quantize(Decimal(1).scaleb(-digits), rounding=rounding)))
    return found


def _sources(page: str) -> str:
    path = LEADERBOARDS / page
    texts = [path.read_text(encoding="utf-8")] if path.is_file() else []
    if path.with_suffix(".json").is_file():
        texts.append(path.with_suffix(".json").read_text(encoding="utf-8"))
    if "-" in path.stem:  # a leaderboard table: its runs' numbers are in the leaderboard's JSON
        texts.append((LEADERBOARDS / "leaderboard.json").read_text(encoding="utf-8"))
    return "\n".join(texts)


def quoted_numbers_not_in(paragraph: str, sources: str) -> list[str]:
    """The numbers a ``paragraph`` quotes (prose, with decimals) that ``sources`` does not hold as written.

    Example:
        >>> quoted_numbers_not_in("reads 11.78 ± 1.77 (`--seed 1.5`), 10.2 % flat", "11.781 ± 1.769 | 0.102")
        []
        >>> quoted_numbers_not_in("reads 11.79", "11.781")
        ['11.79']
    """
    prose = _CODE_SPAN.sub(" ", _LINK.sub(")", paragraph))
    available = _roundings(sources)
    return sorted({number for number in _NUMBER.findall(prose) if number not in available})


def _quoting_paragraphs() -> list:
    params = []
    for page, text in _texts().items():
        if page.parent == LEADERBOARDS:
            continue
        for line, paragraph in _paragraphs(text):
            linked = sorted(set(_LINK.findall(paragraph)))
            if linked and _NUMBER.search(_CODE_SPAN.sub(" ", paragraph)):
                where = f"{page.relative_to(ROOT).as_posix()}:{line}"
                params.append(pytest.param(where, paragraph, linked, id=where))
    return params


def test_some_paragraphs_quote_the_leaderboards():
    assert len(_quoting_paragraphs()) >= 5


@pytest.mark.parametrize(("where", "paragraph", "linked"), _quoting_paragraphs())
def test_a_number_quoted_beside_a_link_to_a_leaderboard_page_is_on_that_page(where, paragraph, linked):
    for page in linked:
        assert (LEADERBOARDS / page).is_file(), f"{where} links to leaderboards/{page}, which does not exist"
    missing = quoted_numbers_not_in(paragraph, "\n".join(_sources(page) for page in linked))
    assert not missing, (f"{where} quotes {missing}, which {', '.join(linked)} does not hold: copy the page's "
                         f"number, or link to the page without copying it")


def _public_modules() -> set[str]:
    package = ROOT / "lightning_checkerboard"
    names = {"lightning_checkerboard"}
    for path in package.iterdir():
        if path.name.startswith("_"):
            continue
        if path.is_dir() and (path / "__init__.py").is_file():
            names.add(f"lightning_checkerboard.{path.name}")
        elif path.suffix == ".py":
            names.add(f"lightning_checkerboard.{path.stem}")
    return names


def test_every_public_module_and_subpackage_has_a_reference_page():
    documented = set()
    for page in (DOCS / "reference").glob("*.md"):
        documented |= set(re.findall(r"^::: ([\w.]+)", page.read_text(encoding="utf-8"), flags=re.MULTILINE))
    missing = _public_modules() - documented
    assert not missing, f"no reference page renders {sorted(missing)}: add a page under docs/reference/ and to mkdocs.yml"


def test_every_reference_page_is_in_the_site_navigation():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages_ = {f"reference/{page.name}" for page in (DOCS / "reference").glob("*.md")}
    assert pages_ and all(page in nav for page in pages_), sorted(page for page in pages_ if page not in nav)


def test_every_exported_class_and_function_has_a_docstring():
    undocumented = []
    for module_name in sorted(_public_modules()):
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if (inspect.isclass(value) or inspect.isroutine(value)) and not (value.__doc__ or "").strip():
                undocumented.append(f"{module_name}.{name}")
    assert not undocumented, f"exported without a docstring: {undocumented}"


_CALL = re.compile(r"`([a-z_][a-z0-9_]*)\(([^`()]*)\)`")


def _exported_functions() -> dict[str, object]:
    functions = {}
    for module_name in sorted(_public_modules()):
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if inspect.isfunction(value):
                functions.setdefault(name, value)
    return functions


def is_signature(written: str) -> bool:
    """Whether ``written`` (between the parentheses) lists parameters, not a call's values.

    Example:
        >>> is_signature("model, example_input=None, *, strict=True, **options"), is_signature('spec, 3')
        (True, False)
    """
    names = [part.strip().partition("=")[0].strip().lstrip("*") for part in written.split(",")]
    return all(name.isidentifier() or name in ("", "...", "…") for name in names)


def signature_mismatch(written: str, function) -> str | None:
    """Why the parameters ``written`` out in prose (``"model, strict=True, **options"``) are not ``function``'s.

    Example:
        >>> def f(model, example_input=None, *, strict=True, **options): ...
        >>> signature_mismatch("model, example_input=None, strict=True, **options", f) is None
        True
        >>> signature_mismatch("model, strict=False", f)
        'strict defaults to True, not False'
    """
    parameters = inspect.signature(function).parameters
    names = list(parameters)
    position = -1
    for part in (piece.strip() for piece in written.split(",")):
        if part in ("", "*", "...", "…"):
            continue
        name, _, default = part.partition("=")
        name = name.strip().lstrip("*")
        if name not in parameters:
            return f"it has no parameter {name!r} (it takes {', '.join(names)})"
        if names.index(name) < position:
            return f"{name!r} comes earlier (the order is {', '.join(names)})"
        position = names.index(name)
        expected = parameters[name].default
        if default and (expected is inspect.Parameter.empty or repr(expected) != default.strip()):
            shown = "no default" if expected is inspect.Parameter.empty else repr(expected)
            return f"{name} defaults to {shown}, not {default.strip()}"
    return None


def test_written_out_signatures_of_exported_functions_match_the_functions():
    functions = _exported_functions()
    checked, wrong = 0, []
    for page, text in _texts().items():
        for line, paragraph in _paragraphs(text):
            for name, written in _CALL.findall(paragraph):
                if name in functions and is_signature(written):
                    checked += 1
                    problem = signature_mismatch(written, functions[name])
                    if problem:
                        wrong.append(f"{page.relative_to(ROOT).as_posix()}:{line}: {name}({written}): {problem}")
    assert checked >= 3
    assert not wrong, "\n".join(wrong)


def test_every_relative_link_in_the_readme_reaches_a_file():
    # The site's own pages are checked by `mkdocs build --strict`; README.md is not one of them.
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", t)]
    assert len(targets) >= 10
    missing = [t for t in targets if not (ROOT / t.split("#", 1)[0]).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"
