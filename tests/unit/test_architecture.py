"""The house's walls (docs/architecture.md): dependencies point down, and demo code stays out of production.

The import graph is read from the source with `ast`: every `import` counts, including function-local ones
and those under `if TYPE_CHECKING:` (a type-only import is still a dependency a reader has to follow), and
importing `a.b.c` also runs `a/__init__.py` and `a/b/__init__.py`, so those count as edges too (except the
importer's own packages, which Python has always started before it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "gpuwarden"

# The seam of issue "no import circle": config, its base, the registries and everything they build on.
CORE = ("gpuwarden.config", "gpuwarden.config_base", "gpuwarden.agent.registry", "gpuwarden.collectors")
# `gpuwarden worker` is a CLI verb that starts the reference worker: the CLI is its entry point, not a user.
WORKER_ENTRY_POINTS = {"gpuwarden.cli"}
# A collector package's CLI verb loads the config file like every verb (`gpuwarden zookeeper check`).
CLI_VERBS = {"gpuwarden.collectors.zookeeper.cli", "gpuwarden.collectors.doctor.command"}
# A collector package's CLI verb loads the config file like every verb (`gpuwarden zookeeper check`).
CLI_VERBS = {"gpuwarden.collectors.zookeeper.cli", "gpuwarden.collectors.doctor.command"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _type_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:`."""
    out: set[int] = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(test):  # type: ignore[arg-type]
            out |= {id(n) for child in node.body for n in ast.walk(child)}
    return out


def imports_of(name: str, path: Path, known: Iterable[str], type_only: bool = True) -> set[str]:
    """The gpuwarden modules that running `name` imports (directly, with their parent packages);
    `type_only=False` leaves out the imports under `if TYPE_CHECKING:`."""
    known = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    skip = set() if type_only else _type_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from a import b` imports the module a.b when there is one, else the name b from a.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            # Parent packages are imported on the way, except the importer's own: those are already
            # running (or done) before the importer's first line, so they add no dependency.
            implied = [m for m in _with_parents(target)[:-1] if not name.startswith(m + ".")]
            found.update(m for m in [*implied, target] if m in known and m != name)
    return found


def import_graph(type_only: bool = True) -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, found, type_only) for name, path in found.items()}


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the package's module count (~150)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _in_core(name: str) -> bool:
    return any(name == c or name.startswith(c + ".") for c in CORE)


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_relative_imports_and_the_packages_on_the_way_are_edges(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("from .collectors.gpu import collector\nimport gpuwarden.paths\n")
    known = {
        "gpuwarden",
        "gpuwarden.collectors",
        "gpuwarden.collectors.gpu",
        "gpuwarden.collectors.gpu.collector",
    }
    known |= {"gpuwarden.paths"}
    # `gpuwarden` itself is the importer's own package: already imported before its first line.
    assert imports_of("gpuwarden.x", source, known) == known - {"gpuwarden"}


def test_no_import_cycle_touches_config_the_registry_or_the_collectors() -> None:
    offending = [c for c in cycles(import_graph()) if any(_in_core(m) for m in c)]
    assert offending == []


def test_the_package_has_no_import_cycle_at_run_time() -> None:
    # Type-only imports may go both ways elsewhere (agent.api and api_webhook name each other's types);
    # around config, the registries and the collectors the test above forbids those too.
    assert cycles(import_graph(type_only=False)) == []


def test_config_base_and_the_registries_never_import_the_config() -> None:
    graph = import_graph()
    registries = (
        "gpuwarden.agent.registry",
        "gpuwarden.remediations.registry",
        "gpuwarden.remediations.section",
    )
    for name in ("gpuwarden.config_base", *registries):
        seen, todo = set(), [name]
        while todo:
            for dep in graph[todo.pop()] - seen:
                seen.add(dep)
                todo.append(dep)
        assert "gpuwarden.config" not in seen, name


def test_no_collector_module_imports_the_whole_config() -> None:
    """Collectors get their own settings and explicit dependencies (CollectorContext), never AgentConfig."""
    graph = import_graph()
    offenders = [
        name
        for name, deps in graph.items()
        if name.startswith("gpuwarden.collectors.") and name not in CLI_VERBS and "gpuwarden.config" in deps
    ]
    assert offenders == []


def test_no_production_module_imports_the_reference_worker() -> None:
    offenders = sorted(
        name
        for name, deps in import_graph().items()
        if not (name == "gpuwarden.worker" or name.startswith("gpuwarden.worker."))
        and name not in WORKER_ENTRY_POINTS
        and any(d == "gpuwarden.worker" or d.startswith("gpuwarden.worker.") for d in deps)
    )
    assert offenders == []
