"""`memento distill ...`: help with an example, the registry commands, and one-line errors."""

import pytest

from memento.distill import AdapterRegistry
from tests.cli.conftest import cli  # noqa: F401  (the CLI runner fixture)

COMMANDS = ["run", "list", "show", "promote", "rollback"]


@pytest.mark.parametrize("name", COMMANDS)
def test_help_opens_with_an_example(cli, name):  # noqa: F811
    result = cli("distill", name, "--help")
    assert result.exit_code == 0 and f"Example: memento distill {name}" in result.stdout


def stored_version(folder, passed: bool):
    registry = AdapterRegistry(folder / "cases.db")
    adapter = folder / f"weights-{len(registry.versions())}"
    adapter.mkdir()
    return registry.add(adapter, {"gate": {"passed": passed, "failed": [] if passed else ["general_ppl"]},
                                  "data_hash": "ab" * 32, "provenance": {"train_case_ids": ["a", "b"]}}, [])


def test_list_show_promote_rollback(cli):  # noqa: F811
    cli.ok("init", "cases.db")
    assert cli.ok("distill", "list", "--bank", "cases.db") == []
    stored_version(cli.folder, True)
    stored_version(cli.folder, False)
    rows = cli.ok("distill", "list", "--bank", "cases.db")
    assert [(r["version"], r["gate_passed"], r["promoted"], r["train_cases"]) for r in rows] == [
        ("v0001", True, False, 2), ("v0002", False, False, 2)]
    shown = cli.ok("distill", "show", "v0002", "--bank", "cases.db")
    assert shown["gate"]["failed"] == ["general_ppl"]
    assert shown["served_name"] == "cases-v0002" and shown["vllm_lora_module"].endswith("cases.db.adapters/v0002/adapter")
    assert cli.ok("distill", "promote", "v0001", "--bank", "cases.db") == {"promoted": "v0001", "history": ["v0001"]}
    error = cli.fails("distill", "promote", "v0002", "--bank", "cases.db")
    assert "v0002 failed its gate (general_ppl)" in error
    assert cli.ok("distill", "rollback", "--bank", "cases.db") == {"promoted": None, "history": []}
    assert "nothing to roll back" in cli.fails("distill", "rollback", "--bank", "cases.db")


def test_errors_are_one_line(cli):  # noqa: F811
    assert "does not exist" in cli.fails("distill", "list", "--bank", "missing.db")
    cli.ok("init", "cases.db")
    assert "'v0007' is not in" in cli.fails("distill", "show", "v0007", "--bank", "cases.db")
    # An empty bank has nothing to distil: refused before any model is loaded.
    assert "only 0 training example(s)" in cli.fails("distill", "run", "--bank", "cases.db")
    assert "heldout_fraction=1.5" in cli.fails("distill", "run", "--bank", "cases.db", "--heldout-fraction", "1.5")
    assert not (cli.folder / "cases.db.adapters").exists()  # a refused run leaves nothing behind
