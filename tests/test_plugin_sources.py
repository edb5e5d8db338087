"""What no provider plugin may contain: core owns the I/O (issue "Core owns the I/O").

Read from the source of every distribution's ``src/`` (parsed, not grepped), so a plugin that
grows an ``_async`` lifecycle twin, keeps an httpx client or pool, catches httpx exceptions or
reads a key from the environment (a variable whose name says KEY, TOKEN or SECRET, or one the
check cannot name) fails here, naming the file and line. Core reads keys (``api_key_env``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p for p in ROOT.glob("tarash-*/src") if p.parent.name != "tarash-core")
LIFECYCLE = {"submit", "status", "result", "cancel", "generate_video", "generate_image"}
#: Modules that are test doubles of a provider's server, not plugin code.
SERVERS = {"testing.py", "server.py", "_fake_platform.py"}


def _modules() -> list[Path]:
    return [
        path
        for src in PLUGINS
        for path in sorted(src.rglob("*.py"))
        if path.name not in SERVERS and "testing" not in path.parts
    ]


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments."""
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _reads_a_key(node: ast.AST, constants: dict[str, str]) -> bool:
    """``node`` is ``os.environ[X]``, ``os.environ.get(X)`` or ``os.getenv(X)`` with X a key."""
    if isinstance(node, ast.Subscript):
        argument = node.slice
    elif isinstance(node, ast.Call) and node.args:
        argument = node.args[0]
    else:
        return False
    name = ast.unparse(node.value if isinstance(node, ast.Subscript) else node.func)
    if name not in ("os.environ", "os.environ.get", "os.getenv"):
        return False
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        variable = argument.value
    elif isinstance(argument, ast.Name) and argument.id in constants:
        variable = constants[argument.id]
    else:
        return True
    return any(word in variable.upper() for word in ("KEY", "TOKEN", "SECRET"))


def _problems(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    where = path.relative_to(root)
    constants: dict[str, str] = {}
    for module in sorted(path.parent.glob("*.py")):  # names imported from sibling modules too
        constants.update(_constants(ast.parse(module.read_text(encoding="utf-8"))))
    found = []
    for node in ast.walk(tree):
        if _reads_a_key(node, constants):
            found.append(f"{where}:{node.lineno}: reads a key from the environment ({ast.unparse(node)})")
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name.removesuffix("_async") in LIFECYCLE and node.name.endswith("_async"):
                found.append(f"{where}:{node.lineno}: an _async lifecycle twin {node.name}()")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            name = f"{node.value.id}.{node.attr}"
            if name in ("httpx.Client", "httpx.AsyncClient", "httpx.HTTPTransport"):
                found.append(f"{where}:{node.lineno}: keeps an httpx client ({name})")
        elif isinstance(node, ast.ExceptHandler) and node.type is not None:
            if "httpx." in ast.unparse(node.type):
                found.append(f"{where}:{node.lineno}: catches httpx exceptions")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names]
            module = node.module if isinstance(node, ast.ImportFrom) else ""
            if module == "tarash.tarash_gateway.http" or "ClientPool" in names:
                found.append(f"{where}:{node.lineno}: keeps a client pool")
    return sorted(found, key=lambda problem: int(problem.split(":")[1]))


def test_there_are_plugins_to_check() -> None:
    assert {p.parent.name for p in PLUGINS} >= {
        "tarash-fal",
        "tarash-example-provider",
        "tarash-replicate",
        "tarash-google",
        "tarash-openai",
    }


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_plugin_code_leaves_the_io_to_core(path: Path) -> None:
    assert _problems(path) == []


def test_the_check_finds_each_kind_of_problem(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(
        "import os, httpx\n"
        "async def submit_async(config, request, context): ...\n"
        "POOL = httpx.AsyncClient()\n"
        "def status(config, job, context):\n"
        "    try:\n"
        "        key = os.environ['MY_API_KEY']\n"
        "    except httpx.TransportError:\n"
        "        pass\n"
        "from tarash.tarash_gateway.http import ClientPool\n"
        "TOKEN_ENV = 'MY_TOKEN'\n"
        "home = os.environ.get('TARASH_HOME')\n"
        "token = os.getenv(TOKEN_ENV)\n"
    )
    problems = [p.split(": ", 1)[1] for p in _problems(planted, tmp_path)]
    assert problems == [
        "an _async lifecycle twin submit_async()",
        "keeps an httpx client (httpx.AsyncClient)",
        "reads a key from the environment (os.environ['MY_API_KEY'])",
        "catches httpx exceptions",
        "keeps a client pool",
        "reads a key from the environment (os.getenv(TOKEN_ENV))",
    ]
