"""The layers point down: platform → the ERP record model → targets → pipelines → functions and tools.

Every ``import`` of a product module (also the ones inside functions and under TYPE_CHECKING) is
read from the source; an import of a module of a higher layer, or of the other pipeline, fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Layer of each package or module (the longest matching prefix wins); higher imports lower only.
LAYERS: dict[str, int] = {
    "shared.errors": 0,
    "shared.platform": 0,
    "shared.records": 1,
    "shared.targets": 2,
    "shared.importing": 3,
    "shared.export": 3,
    "shared.wiring": 4,
    "functions": 5,
    "function_app": 5,
    "tools": 5,
}


def layer_of(module: str) -> tuple[str, int] | None:
    matches = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    if not matches:
        return None
    prefix = max(matches, key=len)
    return prefix, LAYERS[prefix]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def product_files() -> list[Path]:
    files = [ROOT / "function_app.py", *(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py"),
             *(ROOT / "tools").rglob("*.py")]
    return sorted(f for f in files if "__pycache__" not in f.parts)


def upward_imports(files: list[Path], root: Path = ROOT) -> list[str]:
    found = []
    for path in files:
        module = module_name(path, root)
        if module in ("shared", "functions", "tools"):
            continue  # the packages' own __init__ (a docstring)
        here = layer_of(module)
        assert here is not None, f"{path} is in no layer: add its package to LAYERS"
        for line, name in imports_of(path):
            there = layer_of(name)
            if there is None:
                continue
            if there[1] > here[1] or (there[1] == here[1] == 3 and there[0] != here[0]):
                found.append(f"{path.relative_to(root)}:{line} imports {name} ({there[0]}, above {here[0]})")
    return found


def test_no_import_runs_up_a_layer_or_across_the_pipelines() -> None:
    assert upward_imports(product_files()) == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    assert layer_of("shared.platform.config") == ("shared.platform", 0)
    assert layer_of("shared.importing.intake") == ("shared.importing", 3)
    (tmp_path / "shared" / "platform").mkdir(parents=True)
    (tmp_path / "shared" / "export").mkdir()
    low = tmp_path / "shared" / "platform" / "probe.py"
    low.write_text("def f():\n    from shared.importing.intake import Intake\n")
    across = tmp_path / "shared" / "export" / "probe.py"
    across.write_text("import shared.importing.reports\nfrom shared.platform import config\n")
    assert upward_imports([low, across], tmp_path) == [
        "shared/platform/probe.py:2 imports shared.importing.intake.Intake (shared.importing, above shared.platform)",
        "shared/export/probe.py:1 imports shared.importing.reports (shared.importing, above shared.export)",
    ]
