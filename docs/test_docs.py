"""The documentation's code cannot rot: this module executes it.

* Every ```python block of the guide pages (``docs/index.md``, ``docs/guides/*.md``,
  ``docs/concepts/*.md``) runs, offline, against the mock provider. The blocks of one page share
  a fresh namespace and run in order, so a later block may use what an earlier one defined. Each
  page runs in its own temporary directory with Tarash's provider registry reset.
* A block preceded by ``<!-- docs-test: skip -->`` (for example one that needs a real provider
  key) is not run, but still has to compile.
* A block preceded by ``<!-- docs-test: requires MODULE [MODULE...] -->`` runs only when every
  ``MODULE`` can be imported (for examples that need an optional distribution such as
  ``tarash_fal``).
* A shell block (```bash) preceded by ``<!-- docs-test: run -->`` has its ``tarash ...`` command
  lines run, in order, with the installed ``tarash`` command; they must exit with status 0.
  Other lines of the block (``pip install``, ``export``) are shown to the reader only.
* On every other page, a ```python block preceded by ``<!-- docs-test: run -->`` (or
  ``<!-- docs-test: run requires MODULE [MODULE...]`` ``-->``) runs too, with the page's other
  such blocks, in order (the provider pages' offline examples against the fake servers); the
  rest of those pages' ```python blocks must at least compile.
* Every ``--8<--`` snippet include must name a file that exists.

Run with ``pytest docs/test_docs.py`` (``nox -s docs`` does, after building the site).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
EXECUTED_PAGES = sorted(
    [
        DOCS / "index.md",
        DOCS / "installation.md",
        *(DOCS / "guides").glob("*.md"),
        *(DOCS / "concepts").glob("*.md"),
    ]
)
PYTHON_LANGUAGES = ("python", "py", "python3")
SHELL_LANGUAGES = ("bash", "sh", "shell", "console")
ALL_PAGES = sorted(DOCS.rglob("*.md"))
#: Unset while the guides run, so no example can reach a real provider by accident.
PROVIDER_KEY_VARIABLES = (
    "FAL_KEY",
    "FAL_KEY_ID",
    "FAL_KEY_SECRET",
    "EXAMPLE_API_KEY",
    "REPLICATE_API_TOKEN",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "OPENAI_API_KEY",
    "AZURE_OPENAI_API_KEY",
)

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<what>[^>]*?)\s*-->\s*$")
_SNIPPET_LINE = re.compile(r"^\s*(?:;)?--8<--\s+(?P<quote>[\"'])(?P<path>[^\"']+)(?P=quote)\s*$")
_SNIPPET_BLOCK = re.compile(r"^\s*--8<--\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # 1-based line of the first code line in the page
    language: str
    code: str
    marker: str | None  # the docs-test directive right before the fence, if any

    @property
    def where(self) -> str:
        return self.at(0)

    def at(self, offset: int) -> str:
        """``page:line`` of the block's code line ``offset`` (0-based)."""
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page}:{self.line + offset}"


def iter_blocks(page: Path) -> Iterator[Block]:
    """The fenced code blocks of ``page``, with the docs-test marker that precedes each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE_OPEN.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        language = (opening["info"].split() or [""])[0].lower().lstrip(".")
        marker = _preceding_marker(lines, index)
        start = index + 1
        end = start
        while end < len(lines) and not _closes(lines[end], indent, fence):
            end += 1
        body = [
            line[len(indent) :] if line.startswith(indent) else line.lstrip() for line in lines[start:end]
        ]
        yield Block(
            page=page,
            line=start + 1,
            language=language,
            code=textwrap.dedent("\n".join(body)) + "\n",
            marker=marker,
        )
        index = end + 1


def _closes(line: str, indent: str, fence: str) -> bool:
    stripped = line.strip()
    return (
        stripped.startswith(fence[0] * len(fence))
        and set(stripped) == {fence[0]}
        and len(line) - len(line.lstrip()) <= len(indent) + 3
    )


def _preceding_marker(lines: list[str], fence_index: int) -> str | None:
    index = fence_index - 1
    while index >= 0 and not lines[index].strip():
        index -= 1
    if index < 0:
        return None
    match = _MARKER.match(lines[index])
    return match["what"] if match else None


def python_blocks(page: Path) -> list[Block]:
    return [b for b in iter_blocks(page) if b.language in PYTHON_LANGUAGES]


def _compile(block: Block) -> object:
    # Pad with newlines so tracebacks point at the right line of the Markdown page.
    source = "\n" * (block.line - 1) + block.code
    return compile(source, str(block.page), "exec")


def _page_id(page: Path) -> str:
    return str(page.relative_to(DOCS))


# ------------------------------------------------------------------------------------------------
# Executing the guides
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def isolated_tarash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary working directory and job ledger, no provider keys, a registry reset after."""
    from tarash.tarash_gateway import default_gateway
    from tarash.tarash_gateway._plugins import HOST

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TARASH_HOME", str(tmp_path / "tarash-home"))
    monkeypatch.delenv("TARASH_LEDGER", raising=False)
    for name in PROVIDER_KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield tmp_path
    HOST.reset()
    default_gateway().transport.close()


def _missing_modules(marker: str) -> list[str]:
    """The modules a ``requires`` directive names that cannot be imported."""
    missing = []
    for module in marker.split()[1:]:
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            missing.append(module)
    return missing


def _tarash_command() -> str:
    beside = Path(sys.executable).with_name("tarash.exe" if os.name == "nt" else "tarash")
    found = str(beside) if beside.exists() else shutil.which("tarash")
    assert found, "the tarash command is not installed (pip install tarash-core)"
    return found


def _shell_commands(code: str) -> Iterator[tuple[int, str]]:
    """(offset of the first line, command) per command; a trailing ``\\`` continues a line."""
    pending: list[str] = []
    start = 0
    for offset, line in enumerate(code.splitlines()):
        text = line.split(" #", 1)[0].strip().removeprefix("$ ")
        if not pending:
            start = offset
        if text.endswith("\\"):
            pending.append(text[:-1].strip())
            continue
        yield start, " ".join([*pending, text])
        pending = []


def run_shell_block(block: Block, cwd: Path) -> None:
    """Run the ``tarash ...`` lines of a shell block; each must succeed."""
    env = {**os.environ, "TARASH_MOCK_DELAY": "0.01"}
    for offset, command in _shell_commands(block.code):
        if not command.startswith("tarash "):
            continue
        argv = [_tarash_command(), *shlex.split(command)[1:]]
        done = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, (
            f"`{command}` (at {block.at(offset)}) exited with {done.returncode}:\n{done.stdout}{done.stderr}"
        )


@pytest.mark.parametrize("page", EXECUTED_PAGES, ids=_page_id)
def test_guide_code_runs(page: Path, isolated_tarash: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    not_run: list[str] = []
    for block in iter_blocks(page):
        marker = block.marker or ""
        if block.language in SHELL_LANGUAGES:
            if marker == "run":
                run_shell_block(block, isolated_tarash)
            continue
        if block.language not in PYTHON_LANGUAGES:
            continue
        code = _compile(block)
        if marker == "skip":
            continue
        if marker.startswith("requires "):
            missing = _missing_modules(marker)
            if missing:
                not_run.append(f"{block.where} needs {', '.join(missing)}")
                continue
        elif marker:
            pytest.fail(f"{block.where}: unknown docs-test directive {marker!r}")
        try:
            exec(code, namespace)
        except BaseException as exc:
            raise AssertionError(f"code block at {block.where} failed: {exc!r}") from exc
    if not_run:
        pytest.skip("not run: " + "; ".join(not_run))


RUN_MARKED_PAGES = sorted(
    page
    for page in set(ALL_PAGES) - set(EXECUTED_PAGES)
    if any(b.marker and b.marker.split()[0] == "run" for b in python_blocks(page))
)


@pytest.mark.parametrize("page", RUN_MARKED_PAGES, ids=_page_id)
def test_run_marked_blocks_run(page: Path, isolated_tarash: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for block in python_blocks(page):
        words = (block.marker or "").split()
        if not words or words[0] != "run":
            continue
        if words[1:2] == ["requires"]:
            missing = _missing_modules(" ".join(words[1:]))
            if missing:
                pytest.skip(f"{block.where} needs {', '.join(missing)}")
        try:
            exec(_compile(block), namespace)
        except BaseException as exc:
            raise AssertionError(f"code block at {block.where} failed: {exc!r}") from exc


# ------------------------------------------------------------------------------------------------
# Static checks over every page
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ALL_PAGES, ids=_page_id)
def test_python_blocks_compile(page: Path) -> None:
    for block in python_blocks(page):
        try:
            _compile(block)
        except SyntaxError as exc:
            raise AssertionError(f"code block at {block.where} does not compile: {exc}") from exc


def snippet_paths(page: Path) -> Iterator[tuple[int, str]]:
    """(line, path) of each ``--8<--`` include (single-line and block forms)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    in_block = False
    for number, line in enumerate(lines, start=1):
        if _SNIPPET_BLOCK.match(line):
            in_block = not in_block
            continue
        if in_block:
            entry = line.strip()
            if entry and not entry.startswith(";"):
                yield number, entry
            continue
        match = _SNIPPET_LINE.match(line)
        if match:
            yield number, match["path"]


def _strip_selector(path: str) -> str:
    """``file.py:10:20`` and ``file.py:section`` name ``file.py``."""
    head, _, tail = path.partition(":")
    return head if tail else path


@pytest.mark.parametrize("page", ALL_PAGES, ids=_page_id)
def test_snippet_includes_exist(page: Path) -> None:
    missing = [
        f"{page.relative_to(ROOT)}:{line}: {path}"
        for line, path in snippet_paths(page)
        if not (ROOT / _strip_selector(path)).is_file()
    ]
    assert not missing, "snippet includes name missing files:\n" + "\n".join(missing)


#: A test a page names as its evidence: ``module::test_name`` (``module`` without ``test_``) or a
#: bare ``test_name`` in backticks.
_NAMED_TEST = re.compile(r"`(?:(?:test_)?([a-z_]+)(?:\.py)?::)?(test_[a-z0-9_]+)`")


def _test_functions() -> dict[str, set[str]]:
    """Test module (without ``test_``) -> its test functions, in every distribution's tests and
    the conformance kit."""
    found: dict[str, set[str]] = {}
    sources = [*ROOT.glob("tarash-*/tests/test_*.py"), *ROOT.glob("tests/test_*.py")]
    sources += ROOT.glob("tarash-core/src/tarash/tarash_gateway/testing/*.py")
    for source in sources:
        names = set(re.findall(r"def (test_[a-z0-9_]+)", source.read_text()))
        found.setdefault(source.stem.removeprefix("test_"), set()).update(names)
    return found


@pytest.mark.parametrize("page", ALL_PAGES, ids=_page_id)
def test_the_tests_a_page_names_exist(page: Path) -> None:
    """An outcome's evidence in the docs is a test that runs: a renamed or removed one is caught."""
    tests = _test_functions()
    every = set().union(*tests.values())
    missing = [
        f"{module + '::' if module else ''}{name}"
        for module, name in _NAMED_TEST.findall(page.read_text())
        if name not in (tests.get(module, set()) if module else every)
    ]
    assert not missing, f"{page.relative_to(ROOT)} names tests that do not exist: {missing}"


#: The project's distributions, as a ``pip install`` from the package index names them.
_INDEX_INSTALL = re.compile(r"(?<![\w./-])(tarash-(?:core|fal|example-provider))\b")
#: A distribution installed from a checkout: ``./tarash-fal`` or ``/path/to/tarash/tarash-core``.
_CHECKOUT_INSTALL = "/{}"
READMES = sorted(ROOT.glob("tarash-*/README.md"))


@pytest.mark.parametrize("page", [*ALL_PAGES, *READMES], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_index_install_also_shows_the_checkout_install(page: Path) -> None:
    """Until the distributions are on the package index, an install line alone would fail."""
    text = page.read_text(encoding="utf-8")
    published = {
        name
        for command in re.findall(r"pip install([^`#\n]*)", text)
        for name in _INDEX_INSTALL.findall(command)
    }
    missing = sorted(name for name in published if _CHECKOUT_INSTALL.format(name) not in text)
    assert not missing, f"{page.name} installs {missing} from the index without the checkout form"


def test_the_docs_group_installs_what_the_site_extension_imports() -> None:
    tomllib = pytest.importorskip("tomllib")
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    core = tomllib.loads((ROOT / "tarash-core" / "pyproject.toml").read_text())["project"]
    assert set(core["dependencies"]) <= set(groups["docs"])


def test_a_missing_package_of_the_site_extension_is_named() -> None:
    blocker = textwrap.dedent("""
        import runpy, sys

        class NoAttrs:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] == "attrs":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, NoAttrs())
        runpy.run_path(sys.argv[1])
    """)
    done = subprocess.run(
        [sys.executable, "-c", blocker, str(DOCS / "griffe_rst.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "ModuleNotFoundError: docs/griffe_rst.py needs the 'attrs' package, which is not installed: "
        "install the docs dependency group of the root pyproject.toml (`pip install --group docs`, "
        "pip 25.1 or newer) or run `nox -s docs`"
    )


#: Columns of code the content column shows without scrolling, from a 1240-pixel-wide window up
#: (measured with the Material theme and docs/assets/extra.css; the right-hand contents is shown
#: from 1220 pixels, and below that the column widens again).
CODE_COLUMNS = 80


@pytest.mark.parametrize("page", ALL_PAGES, ids=_page_id)
def test_code_samples_fit_the_content_column(page: Path) -> None:
    """Python and shell samples are wrapped; snippet includes come from sources formatted at 110."""
    too_long = [
        block.at(offset)
        for block in iter_blocks(page)
        if block.language in PYTHON_LANGUAGES + SHELL_LANGUAGES
        for offset, line in enumerate(block.code.splitlines())
        if len(line) > CODE_COLUMNS and not _SNIPPET_LINE.match(line)
    ]
    assert not too_long, f"code lines longer than {CODE_COLUMNS} columns at {too_long}"


def test_shell_blocks_join_continued_lines() -> None:
    code = 'tarash generate video "x" \\\n    --out x.mp4  # saved\ntarash providers\n'
    assert list(_shell_commands(code)) == [
        (0, 'tarash generate video "x" --out x.mp4'),
        (2, "tarash providers"),
    ]


def test_executed_pages_are_in_the_nav() -> None:
    """Every page whose code this module executes is reachable on the site."""
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in EXECUTED_PAGES:
        assert str(page.relative_to(DOCS)) in nav, f"{page} is not in mkdocs.yml's nav"


def test_the_block_parser_sees_markers_and_indented_fences(tmp_path: Path) -> None:
    page = tmp_path / "sample.md"
    page.write_text(
        textwrap.dedent("""\
        Intro.

        <!-- docs-test: skip -->
        ```python
        raise SystemExit("never run")
        ```

        !!! example

            ```python title="nested.py"
            x = 1
            ```

        ````markdown
        ```python
        not a block of its own
        ```
        ````
        """),
        encoding="utf-8",
    )
    blocks = list(iter_blocks(page))
    assert [(b.language, b.marker, b.line) for b in blocks] == [
        ("python", "skip", 5),
        ("python", None, 11),
        ("markdown", None, 15),
    ]
    assert blocks[1].code == "x = 1\n"
