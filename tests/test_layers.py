"""Layers point one way: the library (`memento/`) never imports `memento.policies`, `memento.envs` or `memento.evals`.

Those folders (`policies/`, `envs/`, `evals/`, installed under `memento`) hold implementations
and runners that import the library. The CLI's commands that
need them (`policy`, `ask`, `eval`) find them by name, as entry points (`memento.plugins`), so no
module of the library imports them, not even inside a function.
"""

import ast
from pathlib import Path

import memento

HIGHER = {"memento.policies", "memento.envs", "memento.evals", "policies", "envs", "evals"}
LIBRARY = Path(memento.__file__).parent


def imports(tree: ast.AST):
    """(module's package: `memento.x` or the top-level name, line, inside a function) for every import in a parsed file."""
    functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    lazy = {id(inner) for function in functions for inner in ast.walk(function)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "memento":
            names = [f"memento.{alias.name}" for alias in node.names]  # from memento import policies
        for name in names:
            parts = name.split(".")
            yield ".".join(parts[:2]) if parts[0] == "memento" else parts[0], node.lineno, id(node) in lazy


def test_the_library_never_imports_its_siblings():
    wrong = []
    for path in sorted(LIBRARY.rglob("*.py")):
        for package, line, _ in imports(ast.parse(path.read_text(encoding="utf-8"))):
            if package in HIGHER:
                wrong.append(f"{path.relative_to(LIBRARY.parent)}:{line} imports {package}")
    assert not wrong, "\n".join(wrong)


def test_the_check_would_catch_an_import():
    sample = ast.parse("import os\nfrom memento.policies.base import TaskState\ndef f():\n    import memento.evals.runner\n"
                       "from memento import envs\n")
    assert sorted((p, lazy) for p, _, lazy in imports(sample) if p in HIGHER) == [
        ("memento.envs", False), ("memento.evals", True), ("memento.policies", False)]


def test_the_plugins_the_cli_needs_are_installed():
    from memento.plugins import plugin

    assert callable(plugin("policies").make_policy) and callable(plugin("evals").run_eval)
