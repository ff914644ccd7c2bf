"""The package's import graph has no circle, and every module imports on its own.

The graph is read from the source (every import statement, at top level or inside a function),
so a circle hidden behind a function-local import fails here too. `python tests/test_imports.py`
prints the graph, one line per module.
"""
import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "biaxial_cu"


def modules():
    """{dotted name: path} of every module of the package (a package is its __init__.py)."""
    found = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name, path, known):
    """The package's modules that module `name` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:  # `from pkg import module` imports the module
                targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return sorted(t for t in targets if t in known and t != name)


def import_graph():
    known = modules()
    return {name: imported(name, path, known) for name, path in known.items()}


def cycle(graph):
    """One circle of the graph as a list of modules, or None."""
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                return trail[trail.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, trail + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in graph:
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_no_module_imports_one_that_imports_it_back():
    graph = import_graph()
    assert "biaxial_cu.model" in graph and "biaxial_cu.backends.cuda.backend" in graph
    assert cycle(graph) is None, " -> ".join(cycle(graph))


def readme_order():
    """The modules of README's "What is where" table, in its order."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| path | its one job |"):].split("\n\n")[0].splitlines()[2:]
    order = []
    for row in table:
        paths = [c.strip("` ") for c in row.split("|")[1].split(",")]
        folder = paths[0].rsplit("/", 1)[0]
        for path in paths:
            path = path if "/" in path else f"{folder}/{path}"
            if path.startswith(PACKAGE + "/") and path.endswith(".py"):
                order.append(path[:-3].replace("/", "."))
    return order


def test_readme_lists_modules_below_what_they_import():
    """README says each module imports only modules above it in its table: true for every one."""
    graph, order = import_graph(), readme_order()
    assert "biaxial_cu.model" in order and "biaxial_cu.backends.cuda.backend" in order
    listed = [m for m in graph if not m.endswith(("__init__", "_version")) and m not in
              (PACKAGE, "biaxial_cu.backends", "biaxial_cu.backends.cuda")]
    assert sorted(set(listed) - set(order)) == [], "modules missing from README's table"
    for k, module in enumerate(order):
        below = [t for t in graph[module] if t in order and order.index(t) > k]
        assert not below, f"{module} imports {below}, listed below it in README"


def test_the_cycle_finder_finds_a_circle():
    assert cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": []}) == ["a", "b", "c", "a"]
    assert cycle({"a": ["b"], "b": [], "c": ["a", "b"]}) is None


@pytest.mark.slow
def test_every_module_imports_alone():
    """Each module in a fresh interpreter of its own (two at a time)."""
    def load(name):
        run = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True, text=True)
        return name, run.returncode, run.stderr[-2000:]

    with ThreadPoolExecutor(2) as pool:
        failed = [(name, err) for name, code, err in pool.map(load, modules()) if code]
    assert not failed, failed


if __name__ == "__main__":
    for module, targets in import_graph().items():
        print(f"{module}: {', '.join(targets) or '-'}")
