"""The house rules, read from the source with `ast`: no import cycle, the core never imports an
extra at module level and, inside a function, only the extras of one allow-list; no mocks in
production code."""

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "pipeline"
EXTRAS = ("serving", "labeling", "scale", "studies", "bench", "fast")  # everything else is the core
# The only extras the core may reach (inside a function, when asked for): the fast paths and the
# Ray engine. A module named here allows its submodules too.
ALLOWED = ("pipeline.fast", "pipeline.scale.ray_engine")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module imported, whether at module level) for every absolute import in `path` that runs
    (imports under `if TYPE_CHECKING:` are for type checkers only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for statement in node.body
        for inner in ast.walk(statement)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
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


def core_to_extras() -> list[tuple[str, str, bool]]:
    """(core module, extra it imports, whether at module level), for every such import."""
    return [
        (module, target, at_top)
        for module, targets in graph().items()
        if not is_extra(module)
        for target, at_top in targets.items()
        if is_extra(target)
    ]


def is_allowed(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in ALLOWED)


def test_the_core_never_imports_an_extra_at_module_level():
    wrong = [f"{module} -> {target}" for module, target, at_top in core_to_extras() if at_top]
    assert not wrong


def test_the_core_reaches_only_the_allowed_extras_even_inside_functions():
    wrong = [f"{m} -> {target}" for m, target, _ in core_to_extras() if not is_allowed(target)]
    assert not wrong, wrong


def test_imports_inside_functions_are_seen(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text(
        "import os\n\n\ndef f():\n    from pipeline.studies import mteb\n    import json\n",
        encoding="utf-8",
    )
    assert imports(source) == [
        ("os", True),
        ("pipeline.studies", False),
        ("pipeline.studies.mteb", False),
        ("json", False),
    ]
    assert is_extra("pipeline.studies.mteb") and not is_allowed("pipeline.studies.mteb")
    assert is_allowed("pipeline.fast.int8") and is_allowed("pipeline.scale.ray_engine")
    assert not is_allowed("pipeline.scale.batch_predict") and not is_allowed("pipeline.fastest")


def test_no_mocks_in_production_code():
    users = [
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.py")
        if any(name.split(".")[0] == "unittest" for name, _ in imports(path))
    ]
    assert not users
