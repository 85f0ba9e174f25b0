"""The package's shape as docs/architecture.md draws it: every module it names exists, every room of
the run is described there, and no module imports one that imports it back (deferred or not)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from paths import REPO

PACKAGE = REPO / "conformance"
DOC = REPO / "docs" / "architecture.md"


def named_paths(text: str) -> set[str]:
    return set(re.findall(r"\b(conformance/[\w/]+\.py)\b", text))


def named_files(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w/])(\w+\.py)\b", text))


def test_every_module_the_architecture_names_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = sorted(p for p in named_paths(text) if not (REPO / p).is_file())
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"
    files = {p.name for p in PACKAGE.rglob("*.py")}
    unknown = sorted(named_files(text) - files)
    assert not unknown, f"docs/architecture.md names files the package does not have: {unknown}"


def test_every_room_of_the_run_is_described() -> None:
    text = DOC.read_text(encoding="utf-8")
    rooms = {f"conformance/run/{p.name}" for p in (PACKAGE / "run").glob("[!_]*.py")}
    rooms |= {f"conformance/local/{p.name}" for p in (PACKAGE / "local").glob("[!_]*.py")}
    undescribed = sorted(rooms - named_paths(text))
    assert not undescribed, f"docs/architecture.md does not describe {undescribed}"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The package's modules ``path`` imports, at its top or deferred in a function."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] == "conformance"}


def test_no_module_of_the_package_imports_itself_back() -> None:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: imports(path) & set(modules) - {name} for name, path in modules.items()}
    cycles = set()
    for start in graph:
        stack: list[tuple[str, tuple[str, ...]]] = [(start, (start,))]
        seen = {start}
        while stack:
            node, trail = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    cycles.add(" -> ".join((*trail, start)))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, (*trail, nxt)))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles)[:10])
