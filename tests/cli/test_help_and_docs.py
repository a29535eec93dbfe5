"""Every command's help opens with an example that runs as written, and every command is documented."""

import json
import shlex
from pathlib import Path

import pytest
import typer

from memento.cli import app
from tests.cli.fixture_cases import CASES

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md"]


def leaf_commands() -> dict[str, object]:
    """'cases ls' -> its click command, for every command that does something."""
    def walk(command, prefix):
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, f"{prefix} {name}".strip())
        if not hasattr(command, "commands"):
            yield prefix, command

    return dict(walk(typer.main.get_command(app), ""))


COMMANDS = leaf_commands()
SLOW = {"ask", "eval run", "eval report", "policy show", "policy rank",
        "distill run", "distill show", "distill promote", "distill rollback"}
"""Examples that run the agent or torch: run by the slow tests below. The distill ones train, or need a
trained adapter: tests/distill/test_cli.py runs those commands on stored versions."""


def example(name: str) -> list[str]:
    """The command line of the example that opens the command's help."""
    words = shlex.split(COMMANDS[name].help.strip().splitlines()[0].removeprefix("Example: "))
    assert words[0] == "memento"
    return words[1:]


def prepare_folder(cli) -> None:
    """What the examples name: cases.db (with the fixture cases), new_cases.jsonl and backup.jsonl."""
    (cli.folder / "new_cases.jsonl").write_text(json.dumps({"task": "What did Borin Tal invent?"}) + "\n")
    (cli.folder / "fixture.jsonl").write_text("".join(json.dumps(c) + "\n" for c in CASES))
    cli.ok("init", "cases.db")
    cli.ok("cases", "add", "fixture.jsonl", "--bank", "cases.db")
    cli.ok("cases", "export", "backup.jsonl", "--bank", "cases.db")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_opens_with_an_example_of_the_command_itself(cli, name):
    result = cli(*name.split(), "--help")
    assert result.exit_code == 0
    assert COMMANDS[name].help.strip().startswith(f"Example: memento {name} ")
    assert "Example: memento" in result.stdout


@pytest.mark.parametrize("name", sorted(set(COMMANDS) - SLOW))
def test_the_example_runs(cli, name):
    if name != "init":
        prepare_folder(cli)
    result = cli(*example(name))
    assert result.exit_code == 0, (result.stdout, result.stderr)


@pytest.mark.slow
def test_the_agent_and_eval_examples_run(cli, scripted):
    prepare_folder(cli)
    for name in ("ask", "eval run", "eval report"):
        result = cli(*example(name), env=scripted)
        assert result.exit_code == 0, (name, result.stdout, result.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["policy show", "policy rank"])
def test_the_policy_examples_run(cli, name):
    from memento import policies
    from memento import CaseBank
    from tests.fakes import FakeHashEmbedder

    prepare_folder(cli)
    with CaseBank(cli.folder / "cases.db", FakeHashEmbedder(), create=False) as bank:
        policies.make_policy("neural", bank).save(cli.folder / "policy.pt")
    result = cli(*example(name))
    assert result.exit_code == 0, (result.stdout, result.stderr)


def test_every_command_is_documented():
    text = "\n".join(path.read_text(encoding="utf-8") for path in DOCS if path.exists())
    missing = [name for name in COMMANDS if f"memento {name}" not in text]
    assert not missing, f"commands not shown in README.md: {missing}"
