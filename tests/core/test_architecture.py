"""The rules of the house, as a test: which package may import which, no import cycles, no module
too long to read in one sitting. ``docs/architecture.md`` explains them; this keeps them true.

Every import counts, also one inside a function: an import deferred to run time still ties the
two modules together, and hiding a cycle that way is exactly what this test is here to prevent.
"""

import ast
import pathlib

import pytest

import portal

ROOT = pathlib.Path(portal.__file__).parent

#: What each low package may import (besides itself and the standard library and third parties).
#: The ledger is the ground floor; core and audit serve everyone and know no feature; payments is
#: the Stripe boundary and knows no feature it is paid for; certificates know no money; the
#: catalog knows neither payments nor contracts; the pipeline knows nothing of selling.
BASE = {"portal.extensions", "portal.timeutil", "portal.config", "portal.log"}
MAY_IMPORT = {
    "portal.ledger": BASE | {"portal.core"},
    "portal.core": BASE,
    "portal.audit": BASE | {"portal.core"},
    "portal.payments": BASE | {"portal.core", "portal.audit", "portal.buyers"},
    "portal.catalog": BASE | {"portal.core", "portal.audit", "portal.ledger", "portal.buyers"},
    "portal.webhooks": BASE | {"portal.core", "portal.audit", "portal.access", "portal.api"},
    # The pipeline comes before sales: it knows the land, the catalog project it registers and the
    # batches issued to it, never orders, contracts, certificates, payments or revenue (those may
    # read its forecasts).
    "portal.pipeline": BASE
    | {"portal.core", "portal.audit", "portal.catalog", "portal.ledger", "portal.access", "portal.api"},
}
MUST_NOT_IMPORT = {
    "portal.certificates": {"portal.payments", "portal.revenue", "portal.offsets", "portal.contracts"},
    # The transparency log records certificate events: it knows certificates, nothing of money,
    # buyers or the catalog.
    "portal.transparency": {
        "portal.payments",
        "portal.revenue",
        "portal.offsets",
        "portal.contracts",
        "portal.catalog",
        "portal.buyers",
    },
}
MAX_LINES = 600


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = ("portal", *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The portal module that ``name`` (a module, or a name inside one) belongs to."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(name: str) -> set[str]:
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target == "portal" or target.startswith("portal."):
                owner = _owner(target)
                if owner and owner != name:
                    found.add(owner)
    return found


GRAPH = {name: _imports(name) for name in MODULES}


def _package(name: str) -> str:
    return ".".join(name.split(".")[:2])


def test_the_modules_were_found():
    assert "portal.ledger.services" in MODULES and GRAPH["portal.ledger.services"]


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_a_low_package_imports_only_what_is_below_it(package):
    allowed = MAY_IMPORT[package] | {package}
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if _package(name) == package
        for target in targets
        if _package(target) not in allowed
    )
    assert wrong == []


@pytest.mark.parametrize("package", sorted(MUST_NOT_IMPORT))
def test_a_package_does_not_know_what_it_must_not(package):
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if _package(name) == package
        for target in targets
        if _package(target) in MUST_NOT_IMPORT[package]
    )
    assert wrong == []


def test_no_import_cycle():
    """Tarjan's strongly connected components over every import of every module."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in MODULES:
        if name not in index:
            visit(name)
    assert cycles == []


def test_no_module_is_too_long_to_read_in_one_sitting():
    long = {
        str(path.relative_to(ROOT)): n
        for path in ROOT.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_services_commit_only_through_a_named_unit_of_work():
    """A request commits once at its end, a CLI command once when done; a service that must
    commit step by step says so with ``unit_of_work`` or ``checkpoint`` (``core/database.py``),
    never with a bare ``session.commit()`` hidden among code that only flushes."""

    def may_commit(path: pathlib.Path) -> bool:
        name = path.relative_to(ROOT).as_posix()
        return (
            name == "core/database.py"
            or name.startswith("demo/")
            or path.stem in ("cli", "api", "views")
            or path.stem.startswith("views_")
            or path.stem.endswith("_api")
            or path.stem.endswith("_views")
        )

    hidden = sorted(
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*.py")
        if not may_commit(path) and "session.commit()" in path.read_text(encoding="utf-8")
    )
    assert hidden == []
