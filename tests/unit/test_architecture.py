"""The layout's rules that a reader relies on: no import cycle between perfgate's modules, none too long.

Read from the source (ast), not by importing: a cycle that only some import order trips over is found too.
Every import statement counts, also those inside functions (deferred for a heavy library, they still tie
the two modules together) and under `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from support.paths import ROOT

SRC = ROOT / "src"
PACKAGE = SRC / "perfgate"
MAX_MODULE_LINES = 450  # a module one can read in one sitting; past it, split it by concern
GENERATED = {PACKAGE / "profile" / "profile_pb2.py"}  # protoc's output (scripts/gen_proto.sh)


def module_files() -> dict[str, Path]:
    """perfgate's modules by dotted name (a package by its own name, for its __init__.py)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The perfgate modules `name` imports anywhere in its source (a name from a package: the package)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                         for alias in node.names)
    return {module for module in found if module in modules and module != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while (member := stack.pop()) != node:
                group.append(member)
            if group:
                groups.append(sorted([node, *group]))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check below is worth something only if this one can fail."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_reader_sees_relative_nested_and_type_only_imports(tmp_path: Path) -> None:
    modules = {name: tmp_path / f"{name}.py" for name in ("perfgate.x", "perfgate.x.y", "perfgate.z", "perfgate.w",
                                                           "perfgate.v", "perfgate.u")}
    source = tmp_path / "__init__.py"
    source.write_text("import json\nfrom typing import TYPE_CHECKING\nfrom . import y\ntry:\n    import perfgate.z\n"
                      "except ImportError:\n    pass\nif TYPE_CHECKING:\n    import perfgate.w\n"
                      "def later():\n    from perfgate.v import thing\n", encoding="utf-8")
    assert imports_of("perfgate.x", source, modules) == {"perfgate.x.y", "perfgate.z", "perfgate.w", "perfgate.v"}


def test_no_import_cycle_between_perfgates_modules() -> None:
    modules = module_files()
    assert len(modules) > 50 and "perfgate.gate" in modules
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert sum(map(len, graph.values())) > 200  # the reader did find the imports
    assert cycles(graph) == [], "modules that import each other (directly or around a loop)"


def test_no_module_is_longer_than_one_can_read_in_one_sitting() -> None:
    lengths = {path.relative_to(SRC).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
               for path in module_files().values() if path not in GENERATED}
    assert all(path.exists() for path in GENERATED), "a generated module moved: update GENERATED"
    too_long = {path: lines for path, lines in lengths.items() if lines > MAX_MODULE_LINES}
    assert not too_long, f"over {MAX_MODULE_LINES} lines, split by concern: {too_long}"
