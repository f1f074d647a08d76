"""The architecture, checked: layers import downward only, and every package's `__all__` is true.

machine (stdlib only) -> states -> telemetry / rpc -> node; `amdbg` reads only the record format
(`amnode.telemetry`); `amnode` never imports `amdbg`. Packages below the top level import
`amnode.machine`, never the top-level `amnode` (importing it may install the recorder).
See docs/design.md "Layers".
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: package -> the project packages it may import (itself always allowed)
ALLOWED: dict[str, set[str]] = {
    "amnode.machine": set(),
    "amnode.states": {"amnode.machine"},
    "amnode.telemetry": {"amnode.machine"},
    "amnode.rpc": {"amnode.machine", "amnode.states"},
    "amnode.node": {"amnode.machine", "amnode.states", "amnode.rpc", "amnode.telemetry"},
    "amdbg": {"amnode.telemetry"},
}
#: modules directly in `amnode/` (the package root and its entry points)
TOP_ALLOWED = {"amnode.machine", "amnode.telemetry"}

PACKAGES = ["amnode", "amnode.machine", "amnode.states", "amnode.telemetry", "amnode.rpc",
            "amnode.node", "amdbg"]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module `path` imports (absolute names; relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            # `from amnode import telemetry` imports the subpackage, not amnode's namespace
            subs = [f"{mod}.{a.name}" for a in node.names if is_project_module(f"{mod}.{a.name}")]
            if len(subs) < len(node.names):
                yield node.lineno, mod
            for sub in subs:
                yield node.lineno, sub


def is_project_module(name: str) -> bool:
    path = ROOT / name.replace(".", "/")
    return name.startswith(("amnode.", "amdbg.")) and (
        path.is_dir() or path.with_suffix(".py").is_file())


def layer_of(module: str) -> str | None:
    for pkg in sorted(ALLOWED, key=len, reverse=True):
        if module == pkg or module.startswith(pkg + "."):
            return pkg
    return None


def project_target(module: str) -> str | None:
    """The project layer an imported module belongs to, or None for third-party/stdlib."""
    if module == "amnode":
        return "amnode"
    return layer_of(module) or (module if module.startswith("amnode.") else None)


def source_files() -> list[Path]:
    return sorted(p for d in ("amnode", "amdbg") for p in (ROOT / d).rglob("*.py"))


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_downward_only(path: Path) -> None:
    me = module_name(path)
    layer = layer_of(me)
    allowed = TOP_ALLOWED if layer is None else ALLOWED[layer] | {layer}
    bad = []
    for line, mod in imports(path):
        top = mod.partition(".")[0]
        if layer == "amnode.machine" and top not in sys.stdlib_module_names and top != "amnode":
            bad.append(f"{line}: {mod} (the machine imports the standard library only)")
            continue
        target = project_target(mod)
        if target is None or target == layer:
            continue
        if target == "amnode" and layer is not None:
            bad.append(f"{line}: {mod} (import amnode.machine, not the top-level amnode)")
        elif target not in allowed:
            bad.append(f"{line}: {mod} ({layer or me} may import only {sorted(allowed)})")
    assert not bad, f"{path.relative_to(ROOT)} imports against the layers:\n" + "\n".join(bad)


def test_amnode_never_imports_amdbg() -> None:
    offenders = [f"{p.relative_to(ROOT)}:{line}" for p in (ROOT / "amnode").rglob("*.py")
                 for line, mod in imports(p) if mod.partition(".")[0] == "amdbg"]
    assert not offenders


def public_bindings(pkg: str) -> set[str]:
    """Names an `__init__` binds by import, def, class or assignment (public ones only)."""
    path = ROOT / pkg.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name).partition(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_") and n != "*"}


@pytest.mark.parametrize("pkg", PACKAGES)
def test_all_matches_what_the_package_exports(pkg: str) -> None:
    mod = importlib.import_module(pkg)
    exported = set(getattr(mod, "__all__", ()))
    missing = sorted(n for n in exported if not hasattr(mod, n))
    assert not missing, f"{pkg}.__all__ names what it does not define: {missing}"
    unlisted = sorted(public_bindings(pkg) - exported)
    assert not unlisted, f"{pkg} binds public names missing from __all__: {unlisted}"
    assert len(exported) == len(mod.__all__), f"{pkg}.__all__ has duplicates"


@pytest.mark.parametrize("pkg", PACKAGES)
def test_every_package_states_its_role(pkg: str) -> None:
    doc = importlib.import_module(pkg).__doc__ or ""
    assert doc.strip(), f"{pkg}/__init__.py has no docstring stating its role"
