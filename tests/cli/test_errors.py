"""User errors: one line on stderr, a non-zero exit, no traceback, nothing changed, nothing created."""

import pytest
import typer

from memento import CaseBank
from memento.cli import app
from tests.fakes import FakeHashEmbedder

# The arguments each command needs besides --bank, to get as far as opening the bank.
ARGUMENTS = {
    "cases ls": [], "cases show": ["acme-1"], "cases search": ["acme"], "cases add": ["new.jsonl"],
    "cases edit": ["acme-1", "--set", "reward=1"], "cases export": ["out.jsonl"], "cases import": ["new.jsonl"],
    "cases stats": [], "cases reindex": [], "cases rm": ["acme-1", "--yes"], "cases dedup": ["--apply"],
    "cases prune": ["--max-reward", "0", "--yes"], "policy show": ["policy.pt"], "policy rank": ["policy.pt"],
    "ask": ["Who founded Acme?"],
}


def commands_taking_a_bank() -> set[str]:
    def walk(command, prefix):
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, f"{prefix} {name}".strip())
        if not hasattr(command, "commands") and any(p.name == "bank_path" for p in command.params):
            yield prefix

    return set(walk(typer.main.get_command(app), ""))


def test_every_command_that_opens_a_bank_is_checked_here():
    assert commands_taking_a_bank() == set(ARGUMENTS)


@pytest.mark.parametrize("command", sorted(ARGUMENTS))
def test_a_bank_path_that_does_not_exist_is_refused_and_not_created(cli, command):
    (cli.folder / "new.jsonl").write_text('{"task": "a task?"}\n')
    line = cli.fails(*command.split(), *ARGUMENTS[command], "--bank", "missing.db")
    assert "does not exist" in line and "memento init" in line
    assert not (cli.folder / "missing.db").exists() and not (cli.folder / "out.jsonl").exists()


def test_no_bank_at_all_is_a_usage_error(cli):
    result = cli("cases", "ls")
    assert result.exit_code == 2 and "--bank" in result.stderr


def test_the_bank_can_come_from_the_environment(cli, bank):
    assert len(cli.ok("cases", "ls", env={"MEMENTO_BANK": str(bank)})) == 6


def test_a_bank_made_by_another_embedder_is_refused(cli, tmp_path):
    CaseBank(tmp_path / "other.db", FakeHashEmbedder(dim=32, name="other-model")).close()
    line = cli.fails("cases", "ls", "--bank", "other.db")
    assert "'other-model'" in line and "--embedder" in line
    assert "--embedder" in cli.fails("cases", "ls", "--bank", "other.db", env={"MEMENTO_EMBEDDER": None})


def test_an_unknown_embedder_name_is_refused(cli, bank):
    assert "neither a model folder nor a known name" in cli.fails("cases", "ls", "--embedder", "nope", "--bank", bank)


def test_a_file_that_is_not_a_bank_is_refused(cli):
    (cli.folder / "notes.txt").write_text("hello")
    assert "not a case bank" in cli.fails("cases", "ls", "--bank", "notes.txt")


@pytest.mark.parametrize("command", [["cases", "show", "nope"], ["cases", "edit", "nope", "--set", "reward=1"],
                                     ["cases", "rm", "nope", "--yes"]])
def test_an_unknown_id_is_refused(cli, bank, command):
    before = cli.snapshot(bank)
    assert "'nope' is not in bank" in cli.fails(*command, "--bank", bank)
    assert cli.snapshot(bank) == before


@pytest.mark.parametrize("content, message", [
    ('{"task": "fine?"}\n{"task": "broken"\n', "line 2"),
    ('{"task": "fine?"}\n{"task": "", "answer": "x"}\n', "task text is empty"),
    ('{"task": "fine?", "reward": "lots"}\n', "reward"),
])
def test_a_malformed_import_file_imports_nothing(cli, bank, content, message):
    before = cli.snapshot(bank)
    (cli.folder / "bad.jsonl").write_text(content)
    assert message in cli.fails("cases", "import", "bad.jsonl", "--bank", bank)
    assert message in cli.fails("cases", "add", "bad.jsonl", "--bank", bank)
    assert cli.snapshot(bank) == before


def test_a_binary_file_is_refused_by_import_and_add(cli, bank):
    before = cli.snapshot(bank)
    (cli.folder / "binary.jsonl").write_bytes(b'{"task": "fine?"}\n\xf0\x28\x8c\x28\n')
    assert "not UTF-8 text" in cli.fails("cases", "import", "binary.jsonl", "--bank", bank)
    assert "not UTF-8 text" in cli.fails("cases", "add", "binary.jsonl", "--bank", bank)
    assert cli.snapshot(bank) == before


def test_missing_input_files_and_bad_choices_are_one_line(cli, bank):
    assert "does not exist" in cli.fails("cases", "import", "nowhere.jsonl", "--bank", bank)
    assert "does not exist" in cli.fails("cases", "add", "nowhere.jsonl", "--bank", bank)
    assert "holds no cases" in cli.fails("cases", "add", "-", "--bank", bank, input="")
    assert "order_by" in cli.fails("cases", "ls", "--order-by", "colour", "--bank", bank)
    assert "on_conflict" in cli.fails("cases", "import", "-", "--on-conflict", "merge", "--bank", bank, input="")
    assert "--format" in cli.fails("cases", "edit", "acme-1", "--format", "toml", "--bank", bank)
    assert "threshold" in cli.fails("cases", "dedup", "--threshold", "2", "--bank", bank)
