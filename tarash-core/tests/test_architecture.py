"""The import graph of ``tarash.tarash_gateway``, built from the source with ``ast``.

Every import counts: at module level and inside functions (a function-level import is still a
dependency, it only runs later). Imports under ``if TYPE_CHECKING:`` do not count: they never
run. A cycle fails naming its modules and the lines that close it; so does an import that points up a
layer (``LAYERS``, drawn in ``docs/concepts/architecture.md``), and an import inside a function
without a comment saying why it is there (the only good reason is laziness: the import-time cost
of discovery, or an optional extra).

``from package import name`` counts as importing ``package.name`` when that is a module (Python
has already run ``package/__init__.py`` by then, which is the parent-package import every
submodule import makes and which the graph leaves out), else as importing ``package``.
"""

from __future__ import annotations

import ast
import functools
import itertools
import re
from pathlib import Path

import pytest

PACKAGE = "tarash.tarash_gateway"
ROOT = Path(__file__).resolve().parents[1] / "src" / "tarash" / "tarash_gateway"

#: The layers, bottom up (docs/concepts/architecture.md). A module imports its own layer and the
#: layers below; a module in a subpackage is in its package's layer unless listed itself.
LAYERS: list[tuple[str, set[str]]] = [
    (
        "foundations",
        {"exceptions", "models", "field_mappers", "_validators", "_redact", "hookspecs", "_wire"}
        | {"_runtime", "_entry_points", "_local_media", "_cost", "_filenames"},
    ),
    ("contract", {"plugin", "_records", "_lost_submissions", "_handlers"}),
    (
        "services",
        {"_plugins", "_transport", "_errors", "_caps", "_fleet"}
        | {"_converters", "_codec", "_plain", "serialization", "_ledger"},
    ),
    ("helpers", {"utils", "mock", "_mock_media"}),
    (
        "engine",
        {"_inbox", "_engine", "_job_flows", "_download", "_outputs"}
        | {"_pricing", "_spend", "_budget", "_estimate", "_reconcile"},
    ),
    ("gateway", {"_resources", "_gateway"}),
    ("public API", {"", "_api", "jobs", "webhooks", "costs"}),
    ("applications", {"cli", "testing"}),
]

#: Function-level imports that point up on purpose, with why; left out of the graph.
#: A response's ``download()`` method (models) runs the engine-level download path.
DELEGATIONS = {(f"{PACKAGE}.models._responses", f"{PACKAGE}._outputs")}

#: module -> {imported module: (line, inside a function)}
Graph = dict[str, dict[str, tuple[int, bool]]]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([PACKAGE, *parts])


@functools.cache
def _sources() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """The imports of one module: (targets, line, inside a function)."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        self.is_package = is_package
        self.depth = 0
        self.found: list[tuple[list[str], int, bool]] = []

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Import(self, node: ast.Import) -> None:
        self.found.append(([alias.name for alias in node.names], node.lineno, self.depth > 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.module.split(".") if self.is_package else self.module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            origin = ".".join([*base, *([node.module] if node.module else [])])
        else:
            origin = node.module or ""
        targets = [f"{origin}.{alias.name}" for alias in node.names]
        self.found.append(([origin, *targets], node.lineno, self.depth > 0))


@functools.cache
def build_graph() -> tuple[Graph, dict[str, list[tuple[int, str]]]]:
    """The graph, and per module the function-level imports of its own package (line, target)."""
    sources = _sources()
    graph: Graph = {}
    lazy: dict[str, list[tuple[int, str]]] = {}
    for module, path in sources.items():
        visitor = _Imports(module, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        edges: dict[str, tuple[int, bool]] = {}
        for targets, line, in_function in visitor.found:
            origin, names = targets[0], targets[1:]
            submodules = [name for name in names if name in sources]
            hits = submodules or ([origin] if origin in sources else [])
            if not names:  # import a.b.c
                hits = [t for t in targets if t in sources]
            for target in hits:
                if target != module and not (in_function and (module, target) in DELEGATIONS):
                    edges.setdefault(target, (line, in_function))
                    if in_function:
                        lazy.setdefault(module, []).append((line, target))
        graph[module] = edges
    return graph, lazy


def find_cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _describe(graph: Graph, component: list[str]) -> str:
    members = set(component)
    lines = []
    for module in component:
        for target, (line, in_function) in sorted(graph[module].items()):
            if target in members:
                where = " (inside a function)" if in_function else ""
                lines.append(f"  {module}:{line} imports {target}{where}")
    return "cycle between " + ", ".join(component) + "\n" + "\n".join(lines)


def test_the_graph_sees_the_modules_and_their_imports() -> None:
    graph, _ = build_graph()
    assert f"{PACKAGE}.models" in graph
    assert f"{PACKAGE}.exceptions" in graph[f"{PACKAGE}.serialization"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph: Graph = {
        "a": {"b": (1, False)},
        "b": {"c": (1, True)},
        "c": {"a": (1, False)},
        "d": {"a": (1, False)},
    }
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert "b:1 imports c (inside a function)" in _describe(graph, ["a", "b", "c"])


def test_no_import_cycles() -> None:
    graph, _ = build_graph()
    cycles = find_cycles(graph)
    assert not cycles, "\n".join(_describe(graph, component) for component in cycles)


def layer_of(module: str) -> int:
    """The index in LAYERS of ``module`` (its own entry, else its package's)."""
    name = module.removeprefix(PACKAGE).lstrip(".")
    while True:
        for index, (_, members) in enumerate(LAYERS):
            if name in members:
                return index
        if not name:
            raise AssertionError(f"{module} is in no layer: add it to LAYERS")
        name = name.rpartition(".")[0]


def test_every_module_is_in_a_layer() -> None:
    graph, _ = build_graph()
    for module in graph:
        layer_of(module)


def test_no_import_points_up_a_layer() -> None:
    graph, _ = build_graph()
    upward = [
        f"{module}:{line} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, edges in sorted(graph.items())
        for target, (line, _) in sorted(edges.items())
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def _has_reason(lines: list[str], line: int) -> bool:
    """A comment on the import's line, or on a comment line just above its group of imports."""
    index = line - 1
    while index >= 0:
        text = lines[index].strip()
        if "#" in text:
            return True
        if index == line - 1 or text.startswith(("from ", "import ", ")")) or text.endswith(","):
            index -= 1
            continue
        return False
    return False


@pytest.mark.parametrize("module", sorted(_sources()))
def test_imports_inside_functions_say_why(module: str) -> None:
    _, lazy = build_graph()
    lines = _sources()[module].read_text(encoding="utf-8").splitlines()
    unexplained = [
        f"{module}:{line} imports {target}"
        for line, target in lazy.get(module, [])
        if not _has_reason(lines, line)
    ]
    assert not unexplained, "a function-level import needs a comment saying why it is lazy:\n" + "\n".join(
        unexplained
    )


def _is_private(module: str) -> bool:
    parts = module.removeprefix(PACKAGE).lstrip(".").split(".")
    return any(part.startswith("_") for part in parts) or parts[0] in ("cli", "testing")


@pytest.mark.parametrize("module", sorted(m for m in _sources() if _is_private(m)))
def test_private_modules_declare_all(module: str) -> None:
    tree = ast.parse(_sources()[module].read_text(encoding="utf-8"))
    declared = any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
        for node in tree.body
    )
    assert declared, f"{module} declares no __all__"


PAGE = Path(__file__).resolve().parents[2] / "docs" / "concepts" / "architecture.md"


def _title(layer: str) -> str:
    return layer[0].upper() + layer[1:]


@pytest.mark.skipif(not PAGE.is_file(), reason="the docs are not beside this checkout")
def test_the_architecture_page_draws_the_layers() -> None:
    """The page's diagram is LAYERS top down, each box naming its layer's modules; its table has
    one row per arrow."""
    text = PAGE.read_text(encoding="utf-8")
    diagram = text.split("```mermaid\n", 1)[1].split("```", 1)[0]
    boxes = dict(re.findall(r'^\s*(\w+)\["(.*)"\]$', diagram, re.MULTILINE))
    arrows = re.findall(r"^\s*(\w+) --> (\w+)$", diagram, re.MULTILINE)
    top_down = [arrows[0][0], *(target for _, target in arrows)]
    assert arrows == list(itertools.pairwise(top_down))
    assert len(top_down) == len(boxes) == len(LAYERS)
    for box, (layer, members) in zip(top_down, reversed(LAYERS), strict=True):
        title, _, body = boxes[box].removeprefix("<b>").partition("</b>")
        assert layer.lower() in title.lower(), (title, layer)
        named = {token.rstrip("/") for token in re.findall(r"[\w.]+/?", body)}
        missing = {member or "__init__" for member in members} - named
        assert not missing, f"the {title!r} box does not name {sorted(missing)}"
    rows = re.findall(r"^\| ([^|`]+) \|", text, re.MULTILINE)
    layers = [_title(layer) for layer, _ in reversed(LAYERS)]
    assert [row for row in rows if "→" in row] == [f"{a} → {b}" for a, b in itertools.pairwise(layers)]
