"""The package's layout: imports run one way, from the ways in down to the model; modules stay small."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "xlm_demo"
# Each part may import the parts before it in this list, never one after it.
LAYERS = ["model", "engine", "inside", "payloads", "page", "cluster", "api", "server", "cli", "__main__"]
MAX_LINES = 400
MAX_TOP_LEVEL = 8


def part_of(module: str) -> str:
    """The part a dotted module inside the package belongs to: its first name under xlm_demo."""
    return module.split(".")[1]


def imported(path: Path) -> set[str]:
    """The package's modules a file imports (relative imports resolved), at any depth of the file."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.startswith("xlm_demo."):
                found.add(target)
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_and_modules_stay_small(path):
    own = part_of(".".join(path.relative_to(ROOT).with_suffix("").parts))
    for target in imported(path):
        assert LAYERS.index(part_of(target)) <= LAYERS.index(own), f"{own} imports {target}, a part above it"
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_LINES


def test_the_top_level_holds_few_modules_and_the_readme_maps_every_folder():
    assert len(list(PACKAGE.glob("*.py"))) <= MAX_TOP_LEVEL
    folders = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    mapped = set(re.findall(r"^\| `xlm_demo/(\w+)/`", readme, flags=re.MULTILINE))
    assert mapped == folders
    sections = {p.parent.name for p in (PACKAGE / "page").glob("*/__init__.py")}
    assert all(f"`{name}/`" in readme for name in sections)
