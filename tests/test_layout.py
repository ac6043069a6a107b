"""The house rules, read from the source with `ast`: no import cycle, the core never imports an
extra at module level, no mocks in production code."""

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "pipeline"
EXTRAS = ("serving", "scale", "studies", "bench", "fast")  # everything else is the core


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module imported, whether at module level) for every absolute import in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [(name, id(node) in top) for name in names]
    return found


def graph() -> dict[str, dict[str, bool]]:
    """Each pipeline module -> the pipeline modules it imports (True: at module level)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    edges: dict[str, dict[str, bool]] = {name: {} for name in modules}
    for name, path in modules.items():
        for target, at_top in imports(path):
            if target in modules and target != name:
                edges[name][target] = edges[name].get(target, False) or at_top
    return edges


def is_extra(module: str) -> bool:
    parts = module.split(".")
    return len(parts) > 1 and parts[1] in EXTRAS


def test_no_import_cycle_anywhere_in_pipeline():
    edges = graph()
    state: dict[str, str] = {}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in edges[module]:
            if state.get(target) == "open":
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_the_core_never_imports_an_extra_at_module_level():
    edges = graph()
    wrong = [
        f"{module} -> {target}"
        for module, targets in edges.items()
        if not is_extra(module)
        for target, at_top in targets.items()
        if at_top and is_extra(target)
    ]
    assert not wrong


def test_no_mocks_in_production_code():
    users = [
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.py")
        if any(name.split(".")[0] == "unittest" for name, _ in imports(path))
    ]
    assert not users
