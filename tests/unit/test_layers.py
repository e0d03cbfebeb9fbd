"""The package's layers, read from the source with `ast` (nothing is imported): the store stands alone, no module
imports itself round a cycle, and only the demo and the `sandbox` command reach the simulators."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("syncd", "state")
# Outside syncd/sandbox/, only these may import syncd.sandbox: the demo runs the simulators, and the `sandbox`
# command serves them.
SANDBOX_USERS = ("syncd.demo", "syncd.commands.sandbox")


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement's target module, where it is, and whether it runs when the module is imported."""

    source: str
    target: str
    line: int
    at_import_time: bool  # module level, not under `if TYPE_CHECKING:` and not inside a function or class body


def modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every module of `packages` under `root` (a package by its __init__)."""
    found = {}
    for package in packages:
        for file in sorted((root / package).rglob("*.py")):
            parts = list(file.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = file
    return found


def imports(name: str, file: Path, known: dict[str, Path]) -> Iterator[Import]:
    """Every import in `file` of a module in `known`. `from a import b` names module a.b when there is one, else
    a; relative imports resolve against the module's package."""
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    package = name.split(".") if file.name == "__init__.py" else name.split(".")[:-1]

    def targets(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
            return
        base = node.module or ""
        if node.level:
            anchor = package[: len(package) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base

    def walk(nodes: list[ast.stmt], at_import_time: bool) -> Iterator[Import]:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in targets(node):
                    if target in known:
                        yield Import(name, target, node.lineno, at_import_time)
            elif isinstance(node, ast.If):
                guarded = _is_type_checking(node.test)
                yield from walk(node.body, at_import_time and not guarded)
                yield from walk(node.orelse, at_import_time)
            elif isinstance(node, ast.Try):
                for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                    yield from walk(block, at_import_time)
            elif isinstance(node, ast.With | ast.For | ast.While):
                yield from walk(node.body, at_import_time)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                # A class body runs at import time, a function body only when called.
                yield from walk(node.body, at_import_time and isinstance(node, ast.ClassDef))

    yield from walk(tree.body, True)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def all_imports(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[Import]:
    known = modules(root, packages)
    return [found for name, file in known.items() for found in imports(name, file, known) if found.target != name]


def cycles(found: list[Import]) -> list[list[str]]:
    """Every group of modules that import one another round a cycle at import time (Tarjan's strongly connected
    components of more than one module), each sorted, the groups sorted."""
    graph: dict[str, set[str]] = {}
    for edge in found:
        graph.setdefault(edge.source, set())
        graph.setdefault(edge.target, set())
        if edge.at_import_time:
            graph[edge.source].add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def sandbox_offenders(found: list[Import]) -> list[str]:
    """Imports of syncd.sandbox from outside it by modules other than SANDBOX_USERS, at any level."""
    return [
        f"{i.source}:{i.line} imports {i.target}"
        for i in found
        if _within(i.target, "syncd.sandbox")
        and not _within(i.source, "syncd.sandbox")
        and not any(_within(i.source, allowed) for allowed in SANDBOX_USERS)
    ]


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


# ---------------------------------------------------------------------------------------------------------------
# the package


def test_the_store_imports_nothing_from_syncd() -> None:
    """Nothing in state/ imports syncd, at any level (the store speaks only its own rows and outcomes)."""
    found = [f"{i.source}:{i.line} imports {i.target}" for i in all_imports(ROOT) if _within(i.source, "state")]
    assert [line for line in found if " imports syncd" in line] == []


def test_no_import_cycles() -> None:
    """No modules of syncd/ or state/ import one another round a cycle when imported (imports inside functions and
    under `if TYPE_CHECKING:` run later or never, so they cannot deadlock an import)."""
    assert cycles(all_imports(ROOT)) == []


def test_only_the_demo_and_the_sandbox_command_import_the_simulators() -> None:
    """Outside syncd/sandbox/, only syncd/demo/ and the `sandbox` command import syncd.sandbox, at any level."""
    assert sandbox_offenders(all_imports(ROOT)) == []


# ---------------------------------------------------------------------------------------------------------------
# the checks themselves, on a made-up tree


def _tree(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        file = root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"syncd/__init__.py": "", "syncd/a.py": "from syncd import b\n", "syncd/b.py": "import syncd.a\n"},
            [["syncd.a", "syncd.b"]],
            id="two-modules",
        ),
        pytest.param(
            {
                "syncd/__init__.py": "",
                "syncd/a.py": "from syncd.b import thing\n",
                "syncd/b.py": "from .c import other\n",
                "syncd/c.py": "class C:\n    from syncd import a\n",
            },
            [["syncd.a", "syncd.b", "syncd.c"]],
            id="relative-and-class-body",
        ),
        pytest.param(
            {
                "syncd/__init__.py": "",
                "syncd/a.py": "from syncd.b import thing\n",
                "syncd/b.py": "def f():\n    from syncd import a\n",
            },
            [],
            id="function-level-import-is-lazy",
        ),
        pytest.param(
            {
                "syncd/__init__.py": "",
                "syncd/a.py": "from syncd.b import thing\n",
                "syncd/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from syncd.a import A\n",
            },
            [],
            id="type-checking-only",
        ),
        pytest.param(
            {
                "syncd/__init__.py": "",
                "syncd/p/__init__.py": "from syncd.p.q import x\n",
                "syncd/p/q.py": "from syncd.p import r\n",
                "syncd/p/r.py": "try:\n    import syncd.p\nexcept ImportError:\n    pass\n",
            },
            [["syncd.p", "syncd.p.q", "syncd.p.r"]],
            id="through-a-package-init",
        ),
    ],
)
def test_cycles_are_found_in_a_made_up_tree(tmp_path: Path, files: dict[str, str], expected: list[list[str]]) -> None:
    """The cycle check follows absolute, relative, package and class-body imports, and skips lazy ones."""
    root = _tree(tmp_path, files)
    assert cycles(all_imports(root, ("syncd",))) == expected


def test_a_store_import_of_syncd_is_caught_in_a_made_up_tree(tmp_path: Path) -> None:
    """An import of syncd inside a function of state/ still counts against the store's independence."""
    root = _tree(
        tmp_path,
        {"syncd/__init__.py": "", "syncd/events.py": "", "state/__init__.py": "", "state/x.py": ""},
    )
    (root / "state" / "x.py").write_text("def f():\n    from syncd.events import E\n", encoding="utf-8")
    found = all_imports(root, ("syncd", "state"))
    assert [(i.source, i.target, i.at_import_time) for i in found] == [("state.x", "syncd.events", False)]


def test_sandbox_imports_are_caught_in_a_made_up_tree(tmp_path: Path) -> None:
    """A lazy import of the simulators by the daemon counts; the demo, the sandbox command and the simulators'
    own imports do not."""
    root = _tree(
        tmp_path,
        {
            "syncd/__init__.py": "",
            "syncd/sandbox/__init__.py": "",
            "syncd/sandbox/serve.py": "from syncd.sandbox import faults\n",
            "syncd/sandbox/faults.py": "",
            "syncd/demo/__init__.py": "",
            "syncd/demo/run.py": "from syncd.sandbox.serve import build\n",
            "syncd/commands/__init__.py": "",
            "syncd/commands/sandbox.py": "def run():\n    from syncd.sandbox import serve\n",
            "syncd/daemon.py": "def run():\n    import syncd.sandbox.serve\n",
        },
    )
    assert sandbox_offenders(all_imports(root, ("syncd",))) == ["syncd.daemon:2 imports syncd.sandbox.serve"]
