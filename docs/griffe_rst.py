"""A Griffe extension that lets reStructuredText-flavoured docstrings render well on the site.

Tarash's docstrings are read by people in editors first, so they use the Sphinx conventions
Python developers know (``:class:`X```, ``Example::`` literal blocks, ``:param x:`` fields). The
site renders docstrings as Markdown; this extension bridges the two when the API reference is
generated, without touching the source:

* cross-reference roles (``:class:``, ``:func:``, ``:mod:``, ``:data:``, ``:exc:``, ``:meth:``,
  ``:attr:``) become optional autorefs links (plain code when the target is not on the site);
* a ``Something::`` paragraph followed by an indented literal block becomes a fenced code block;
* Sphinx field lists (``:param x:``, ``:returns:``, ``:raises X:``) become Google sections,
  placed after the examples (written after the fields, they would otherwise be swallowed into the
  last field), so one docstring style renders the whole site; a bare ``:raises:`` field, which
  names no exception, becomes a sentence of the description;
* a Google-style entry documenting several names at once (``provider, model: ...``) becomes one
  entry per name.

A second extension, :class:`AttrsSignatures`, gives attrs classes the constructor signature
attrs generates at runtime (Griffe reads source and cannot see it), so each model's reference
shows its fields, types and defaults in one signature.

Configured in ``mkdocs.yml`` under the mkdocstrings python handler's ``extensions``.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

#: This checkout's tarash-core sources: the runtime classes are imported from here.
CORE_SOURCES = Path(__file__).resolve().parents[1] / "tarash-core" / "src"


def _missing(exc: ModuleNotFoundError) -> ModuleNotFoundError:
    return ModuleNotFoundError(
        f"docs/griffe_rst.py needs the {exc.name!r} package, which is not installed: install the "
        "docs dependency group of the root pyproject.toml (`pip install --group docs`, pip 25.1 "
        "or newer) or run `nox -s docs`",
        name=exc.name,
    )


try:
    import attrs
    from griffe import (
        Class,
        Extension,
        Function,
        Module,
        Object,
        Parameter,
        ParameterKind,
        Parameters,
    )
except ModuleNotFoundError as exc:
    raise _missing(exc) from exc

if str(CORE_SOURCES) not in sys.path:
    sys.path.insert(0, str(CORE_SOURCES))

_ROLE = re.compile(r":(?:py:)?(class|func|mod|data|exc|meth|attr|obj):`(~?)([^`<>]+)`")
_LITERAL_INTRO = re.compile(r"^(?P<indent>\s*)(?P<text>.*?)\s*::\s*$")
_FIELD = re.compile(r"^:(param|parameter|arg|type|returns?|rtype|raises?|except|var|ivar)\b")


def _guess_language(block: list[str]) -> str:
    first = next((line.strip() for line in block if line.strip()), "")
    if first.startswith("[") and "=" in "\n".join(block):
        return "toml"
    if any(ch in "\n".join(block) for ch in "└├│"):
        return "text"
    return "python"


class RstToMarkdown(Extension):
    """Rewrite each loaded object's docstring from RST conventions to Markdown."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is None or not docstring.value:
            return
        text = _rewrite_roles(docstring.value, obj.module.path)
        text = _split_shared_entries(text)
        text = _reorder_fields(text)
        docstring.value = _fence_literal_blocks(text)


def _rewrite_roles(text: str, module: str) -> str:
    def replace(match: re.Match[str]) -> str:
        _role, short, target = match.groups()
        target = target.strip().rstrip("()")
        identifier = target if "." in target or not module else f"{module}.{target}"
        shown = target.rsplit(".", 1)[-1] if short else target
        return f'<autoref identifier="{identifier}" optional><code>{shown}</code></autoref>'

    return _ROLE.sub(replace, text)


_SHARED_ENTRY = re.compile(r"^(?P<indent>\s+)(?P<names>\w+(?:, \w+)+): (?P<text>.*)$")


def _split_shared_entries(text: str) -> str:
    """``a, b: text`` in an ``Attributes:`` section becomes one entry per name (Google style)."""
    out: list[str] = []
    in_section = False
    for line in text.splitlines():
        if re.match(r"^(Attributes|Args|Arguments|Parameters):\s*$", line):
            in_section = True
        elif line and not line[0].isspace():
            in_section = False
        match = _SHARED_ENTRY.match(line) if in_section else None
        if match is None:
            out.append(line)
            continue
        out.extend(f"{match['indent']}{name}: {match['text']}" for name in match["names"].split(", "))
    return "\n".join(out)


def _split_literal_blocks(lines: list[str]) -> list[tuple[str, list[str]]]:
    """Split lines into ("text", lines) and ("literal", intro + blank + indented lines) chunks."""
    chunks: list[tuple[str, list[str]]] = []
    index = 0
    current: list[str] = []
    while index < len(lines):
        line = lines[index]
        intro = _LITERAL_INTRO.match(line)
        has_block = (
            intro is not None
            and index + 2 < len(lines)
            and not lines[index + 1].strip()
            and _indent(lines[index + 2]) > _indent(line)
        )
        if not has_block:
            current.append(line)
            index += 1
            continue
        if current:
            chunks.append(("text", current))
            current = []
        base = _indent(line)
        block = [line, ""]
        index += 2
        while index < len(lines) and (not lines[index].strip() or _indent(lines[index]) > base):
            block.append(lines[index])
            index += 1
        while block and not block[-1].strip():
            block.pop()
        chunks.append(("literal", block))
    if current:
        chunks.append(("text", current))
    return chunks


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip()) if line.strip() else 0


def _reorder_fields(text: str) -> str:
    """Turn a Sphinx field list into Google sections, after the description and examples.

    Literal blocks (examples) written after the fields are moved before them; ``:param x:``,
    ``:returns:`` and ``:raises X:`` become ``Args:``, ``Returns:`` and ``Raises:`` sections, so
    one docstring style (Google) renders the whole site.
    """
    lines = text.splitlines()
    first_field = next((i for i, line in enumerate(lines) if _FIELD.match(line)), None)
    if first_field is None:
        return text
    head, tail = lines[:first_field], lines[first_field:]
    moved: list[str] = []
    kept: list[str] = []
    for kind, chunk in _split_literal_blocks(tail):
        if kind == "literal":
            moved.extend(["", *chunk, ""])
        else:
            kept.extend(chunk)
    notes: list[str] = []
    sections: dict[str, list[str]] = {"Args": [], "Returns": [], "Raises": []}
    for field, argument, description in _fields(kept):
        if field in ("param", "parameter", "arg") and argument:
            sections["Args"].append(f"    {argument}: {description}")
        elif field in ("returns", "return"):
            sections["Returns"].append(f"    {description}")
        elif field in ("raises", "raise", "except") and argument:
            sections["Raises"].append(f"    {argument}: {description}")
        elif field in ("raises", "raise", "except"):
            notes.extend(["", f"Errors: {description}"])
    while head and not head[-1].strip():
        head.pop()
    body = [*head, *notes, *moved]
    for title, entries in sections.items():
        if entries:
            body.extend(["", f"{title}:", *entries])
    return "\n".join(body).strip("\n")


def _fields(lines: list[str]) -> list[tuple[str, str, str]]:
    """(field, argument, one-line description) for each ``:field argument: text`` entry."""
    entries: list[tuple[str, str, str]] = []
    for line in lines:
        match = re.match(r"^:(\w+)(?:\s+([^:]+))?:\s*(.*)$", line)
        if match:
            entries.append((match[1], (match[2] or "").strip(), match[3].strip()))
        elif entries and line.strip():
            field, argument, description = entries[-1]
            entries[-1] = (field, argument, f"{description} {line.strip()}".strip())
    return entries


def _fence_literal_blocks(text: str) -> str:
    out: list[str] = []
    for kind, chunk in _split_literal_blocks(text.splitlines()):
        if kind == "text":
            out.extend(chunk)
            continue
        intro, block = chunk[0], chunk[2:]
        base = min((_indent(line) for line in block if line.strip()), default=0)
        match = _LITERAL_INTRO.match(intro)
        assert match is not None
        lead = match["text"]
        if lead:
            out.append(f"{match['indent']}{lead}:")
            out.append("")
        out.append(f"{match['indent']}```{_guess_language(block)}")
        out.extend(match["indent"] + line[base:] if line.strip() else "" for line in block)
        out.extend([f"{match['indent']}```", ""])
    return "\n".join(out)


class AttrsSignatures(Extension):
    """Synthesize ``__init__`` signatures of attrs classes from the runtime class's fields."""

    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        for cls in _classes(pkg):
            runtime = _runtime_class(cls.path)
            if runtime is not None and attrs.has(runtime):
                _set_init(cls, runtime)


def _classes(obj: Module | Class) -> list[Class]:
    found: list[Class] = []
    for member in obj.members.values():
        if member.is_alias:
            continue
        if isinstance(member, Class):
            found.append(member)
            found.extend(_classes(member))
        elif isinstance(member, Module):
            found.extend(_classes(member))
    return found


def _runtime_class(path: str) -> type | None:
    module_path, _, name = path.rpartition(".")
    try:
        value = getattr(importlib.import_module(module_path), name, None)
    except ModuleNotFoundError as exc:
        raise _missing(exc) from exc
    return value if isinstance(value, type) else None


def _default(field: attrs.Attribute) -> str | None:  # type: ignore[type-arg]
    default = field.default
    if default is attrs.NOTHING:
        return None
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        factory = default.factory
        if factory in (dict, list, tuple, set):
            return repr(factory())
        return f"{getattr(factory, '__name__', 'factory')}()"
    return repr(default)


def _set_init(cls: Class, runtime: type) -> None:
    existing = cls.members.get("__init__")
    leading: list[Parameter] = []
    var_keyword: Parameter | None = None
    if isinstance(existing, Function):
        # A hand-written __init__ (e.g. ``prompt, **kwargs`` collecting extras): keep its leading
        # parameters and its ``**kwargs``, and spell out the fields in between.
        leading = [
            p
            for p in existing.parameters
            if p.kind in (ParameterKind.positional_only, ParameterKind.positional_or_keyword)
        ]
        var_keyword = next((p for p in existing.parameters if p.kind is ParameterKind.var_keyword), None)
    taken = {p.name for p in leading}
    fields: list[Parameter] = []
    for field in attrs.fields(runtime):
        if not field.init or field.name in taken:
            continue
        member = cls.members.get(field.name)
        annotation = getattr(member, "annotation", None) or field.type
        keyword_only = field.kw_only or var_keyword is not None
        fields.append(
            Parameter(
                getattr(field, "alias", None) or field.name.lstrip("_"),
                annotation=annotation,
                kind=ParameterKind.keyword_only if keyword_only else ParameterKind.positional_or_keyword,
                default=_default(field),
            )
        )
    if not leading:
        leading = [Parameter("self", kind=ParameterKind.positional_or_keyword)]
    parameters = [*leading, *fields, *([var_keyword] if var_keyword else [])]
    init = Function(
        "__init__",
        lineno=0,
        endlineno=0,
        parent=cls,
        parameters=Parameters(*parameters),
        returns="None",
    )
    cls.set_member("__init__", init)
