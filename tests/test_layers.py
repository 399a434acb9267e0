"""The package's layers import only downward (the order is stated in ``gesco/__init__.py``)."""

import ast
from pathlib import Path

import gesco

PACKAGE = Path(gesco.__file__).parent

#: Lowest first; a module may import its own layer and the ones before it, at the top or inside a function.
LAYERS = [
    {"__version__", "constants", "io", "config", "weights_folder", "images"},
    {"semantics"},
    {"datasets"},
    {"channel"},
    {"receiver"},
    {"link"},
    {"training"},
    {"baselines"},
    {"evaluation"},
    {"pretrained"},
    {"serve"},
    {"cli"},
]


def layer_of(top: str) -> int:
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"gesco.{top} is in no layer: add it to LAYERS and to the order in gesco/__init__.py")


def imported_gesco_modules(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "gesco" else [f"gesco.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.startswith("gesco.")]
    return found


def test_every_module_imports_only_its_layer_and_below():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative == Path("__init__.py"):
            continue  # the package's lazy exports reach every layer by design
        own = layer_of(relative.parts[0].removesuffix(".py"))
        for line, name in imported_gesco_modules(path):
            target = layer_of(name.split(".")[1])
            if target > own:
                upward.append(f"{relative}:{line} imports {name}")
    assert upward == []


def test_the_package_docstring_states_the_same_order():
    order = gesco.__doc__.split("Layers", 1)[1]
    positions = [order.index(sorted(names)[0]) for names in LAYERS[1:]]
    assert positions == sorted(positions)
