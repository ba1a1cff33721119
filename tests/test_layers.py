"""The package's architecture as a test: every import (module level or inside a function) points
down the layers, no module imports itself through others, and no private name crosses modules.

Layers, top to bottom (README, "Layout")::

    cli → pipeline → outputs → corridor → trajectory → {io, parsers} → core

core: errors, schema, config, version, arrays, threads, engine, kernel_cache, heap. The package root
(``telemetry/__init__``, the public API) sits above everything and nothing inside imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "telemetry"

LAYERS: tuple[tuple[str, int], ...] = (
    ("telemetry.cli", 6), ("telemetry.__main__", 6),
    ("telemetry.pipeline", 5),
    ("telemetry.outputs", 4),
    ("telemetry.corridor", 3),
    ("telemetry.trajectory", 2),
    ("telemetry.io", 1), ("telemetry.parsers", 1),
    ("telemetry.errors", 0), ("telemetry.schema", 0), ("telemetry.config", 0), ("telemetry.version", 0),
    ("telemetry.arrays", 0), ("telemetry.deployments", 0), ("telemetry.threads", 0), ("telemetry.engine", 0), ("telemetry.kernel_cache", 0),
    ("telemetry.heap", 0),
    ("telemetry.data", 0),
)
ROOT_LAYER = 7


def modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


MODULES = modules()


def layer(name: str) -> int:
    if name == "telemetry":
        return ROOT_LAYER
    for prefix, level in LAYERS:
        if name == prefix or name.startswith(prefix + "."):
            return level
    raise KeyError(name)


def _resolve(target: str) -> str | None:
    """The package module an import statement loads (longest known prefix)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def imports(name: str) -> list[tuple[str, list[str], int]]:
    """(module imported, names imported from it, line) for every import in ``name``."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("telemetry"):
                    found.append((a.name, [], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("telemetry"):
                found.append((mod, [a.name for a in node.names], node.lineno))
    return found


def edges() -> dict[str, set[str]]:
    """Module → package modules it makes Python load (``from P import m`` loads P and P.m)."""
    out: dict[str, set[str]] = {}
    for name in MODULES:
        deps = set()
        for mod, names, _ in imports(name):
            deps.add(_resolve(mod))
            for n in names:
                if f"{mod}.{n}" in MODULES:
                    deps.add(f"{mod}.{n}")
        out[name] = {d for d in deps if d and d != name}
    return out


def test_every_module_has_a_layer() -> None:
    unknown = []
    for name in MODULES:
        try:
            layer(name)
        except KeyError:
            unknown.append(name)
    assert not unknown, f"modules outside the layers (add them to LAYERS and the README): {unknown}"


def test_imports_point_down_the_layers() -> None:
    up = []
    for name, deps in edges().items():
        for d in deps:
            # a package's __init__ may import its own modules (same layer); the root imports anything
            if layer(d) > layer(name):
                up.append(f"{name} (layer {layer(name)}) imports {d} (layer {layer(d)})")
    assert not up, "imports pointing up the layers:\n" + "\n".join(sorted(up))


def test_no_import_cycles() -> None:
    graph = edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_no_private_name_crosses_modules() -> None:
    bad = []
    for name in MODULES:
        aliases = {}
        for mod, names, line in imports(name):
            for n in names:
                target = f"{mod}.{n}"
                if n.startswith("_") and not n.startswith("__") and target not in MODULES:
                    bad.append(f"{name}:{line} imports {n} from {mod}")
                if target in MODULES:
                    aliases[n] = target
        tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for a in node.names:
                    if a.asname and f"{node.module}.{a.name}" in MODULES:
                        aliases[a.asname] = f"{node.module}.{a.name}"
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                bad.append(f"{name}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert not bad, "private names used across modules:\n" + "\n".join(sorted(bad))


@pytest.mark.parametrize("package", ["io", "outputs", "corridor", "trajectory", "parsers", "cli"])
def test_each_package_says_its_layer(package: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text(encoding="utf-8"))) or ""
    assert "layer" in doc.lower(), f"telemetry/{package}/__init__.py should say which layer it is"
