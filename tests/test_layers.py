"""The layer rule, read from the code: imports run one way only — data → eval → models → training
→ experiments → api/cli/pages — with no cycles between modules and no module that doubles as a
function. Function-local imports count too: a lazy import is still a dependency."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A module belongs to the first layer whose prefix it starts with.
LAYERS = [
    ("base", ("recviz.version", "recviz.errors", "recviz.options", "recviz.paths", "recviz.crashlog", "recviz.limits",
              "recviz.files", "recviz.native")),
    ("data", ("recviz.data",)),
    ("eval", ("recviz.eval",)),
    ("models", ("recviz.models",)),
    ("training", ("recviz.training",)),
    # what a run is (its config), running and storing runs, and reading them back (analysis)
    ("experiments", ("recviz.config", "recviz.experiments", "recviz.analysis")),
    ("interfaces", ("recviz.api", "recviz.cli", "recviz.commands", "recviz.charts", "recviz.__main__",
                    "recviz", "pages", "app")),
]


def modules() -> dict[str, Path]:
    files = [*ROOT.glob("recviz/**/*.py"), *ROOT.glob("pages/**/*.py"), ROOT / "app.py"]
    out = {}
    for path in files:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the modules of this checkout it imports (anywhere in the file)."""
    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*up, base] if base else up)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            found |= {t for t in map(resolve, targets) if t and t != name}
        edges[name] = found
    return edges


def layer(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def test_every_module_has_a_layer():
    for module in modules():
        layer(module)


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    edges = imports(modules())
    upward = sorted(f"{a} ({LAYERS[layer(a)][0]}) imports {b} ({LAYERS[layer(b)][0]})"
                    for a, targets in edges.items() for b in targets if layer(b) > layer(a))
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    edges = imports(modules())
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in list(edges):
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_no_module_doubles_as_a_function():
    for path in modules().values():
        assert not re.search(r"sys\.modules\[.*\]\.__class__\s*=", path.read_text()), path


def test_scoring_overrides_go_through_the_public_hook():
    """`_forward_rows` is TorchRecommender's own; two-sided models use the two-stage hook."""
    for path in (ROOT / "recviz").rglob("*.py"):
        if path.name != "torch_base.py":
            assert "def _forward_rows" not in path.read_text(), path


def test_the_cli_and_the_model_declarations_import_no_torch():
    """The registry's promise: listing models, reading their options and parsing a command need no
    torch (1.3 s to import here; `recviz --help` took 1.9 s with it, 0.4 s without). A model's
    implementation is imported when one is built."""
    import subprocess
    import sys

    code = ("import sys, recviz.cli, recviz.models.registry, recviz.experiments.prepared; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
