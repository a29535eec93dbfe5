"""The distribution claims one top-level name, `memento`: policies/, envs/ and evals/ install under it.

The folders keep the layout the repository asks for; pyproject.toml maps them to
`memento.policies`, `memento.envs` and `memento.evals`. A package missing from that list would be
left out of the wheel, and a module importing the folders by their bare names would load a second
copy of them beside the installed one: both are checked here.
"""

import ast
import tomllib
from pathlib import Path

import memento

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"memento": "memento", "policies": "memento.policies", "envs": "memento.envs", "evals": "memento.evals"}


def declared() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_package_folder_is_in_the_distribution_under_memento():
    on_disk = set()
    for folder, name in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            on_disk.add(".".join((name, *relative)))
    assert set(declared()["packages"]) == on_disk
    assert declared()["package-dir"] == {name: folder for folder, name in FOLDERS.items()}


def test_no_module_imports_the_folders_by_their_bare_names():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        if {".venv", ".venv-vllm", "runs", "build", ".git"} & set(path.relative_to(ROOT).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            wrong += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names
                      if n.split(".")[0] in {"policies", "envs", "evals"}]
    assert not wrong, "import them as memento.policies, memento.envs, memento.evals:\n" + "\n".join(wrong)


def test_the_installed_names_resolve_to_the_repository_folders():
    import memento.envs
    import memento.evals
    import memento.policies

    for module, folder in ((memento.policies, "policies"), (memento.envs, "envs"), (memento.evals, "evals")):
        assert Path(module.__file__).parent == ROOT / folder
    assert Path(memento.__file__).parent == ROOT / "memento"
