"""The package's layout is its pipeline: stages stacked from runtime helpers to the report, every
import pointing down the stack (or within a stage), no import cycles, no module too long to hold
in the head."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "approxeq"
# bottom to top; config.py validates a configuration against everything below it
STAGES = ("runtime", "algebra", "data", "nn", "method", "experiments", "report", "config")
MAX_LINES = 420


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage_of(module: str) -> int:
    parts = module.split(".")
    return STAGES.index(parts[1]) if len(parts) > 1 else -1


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path) -> set[str]:
    """Every approxeq module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("approxeq"):
            assert node.level == 0, f"{path}: relative import (the layout uses absolute imports)"
            for alias in node.names:  # `from approxeq.data import ddmnist` imports a module
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("approxeq"))
    return found


def test_every_module_lives_in_a_stage():
    loose = [m for m in MODULES if m != "approxeq" and m.split(".")[1] not in STAGES]
    assert not loose, f"modules outside the stages {STAGES}: {loose}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_stack(module):
    upward = [other for other in imports_of(MODULES[module]) if stage_of(other) > stage_of(module)]
    assert not upward, f"{module} (stage {STAGES[stage_of(module)]}) imports the higher stage(s) {upward}"


def test_no_import_cycles():
    graph = {m: {o for o in imports_of(p) if o in MODULES and o != m} for m, p in MODULES.items()}
    # a package's __init__ importing its own submodules is how it registers them, not a cycle
    graph = {m: {o for o in targets if not (m == o.rsplit(".", 1)[0] and MODULES[m].name == "__init__.py")}
             for m, targets in graph.items()}
    visiting, done = [], set()

    def visit(node):
        if node in done:
            return
        assert node not in visiting, "import cycle: " + " → ".join(visiting[visiting.index(node):] + [node])
        visiting.append(node)
        for other in sorted(graph[node]):
            visit(other)
        visiting.pop()
        done.add(node)

    for module in sorted(graph):
        visit(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_short(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES}): split it"
