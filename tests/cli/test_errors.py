"""User errors: one line on stderr, a non-zero exit, no traceback, nothing changed, nothing created."""

import json
from pathlib import Path

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
    "ask": ["Who founded Acme?"], "ui": ["--check"], "bank check": [],
    "distill run": [], "distill list": [], "distill show": ["v0001"], "distill promote": ["v0001"], "distill rollback": [],
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


def test_a_directory_given_as_an_input_file_is_refused(cli, bank):
    (cli.folder / "backups").mkdir()
    for command in ("import", "add"):
        line = cli.fails("cases", command, "backups", "--bank", bank)
        assert "'backups' is a directory, not a file" in line and "backups/cases.jsonl" in line


def test_an_export_destination_that_cannot_be_a_file_is_refused_before_anything_is_written(cli, bank):
    (cli.folder / "backups").mkdir()
    assert "'backups' is a directory; give a file to write" in cli.fails("cases", "export", "backups", "--bank", bank)
    line = cli.fails("cases", "export", "nowhere/out.jsonl", "--bank", bank)
    assert "folder 'nowhere' for 'out.jsonl' does not exist; create it first" in line
    assert not (cli.folder / "nowhere").exists() and list((cli.folder / "backups").iterdir()) == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device that is always full")
def test_a_full_disk_is_one_line_too(cli, bank):
    line = cli.fails("cases", "export", "/dev/full", "--bank", bank)
    assert "No space left on device" in line and "free disk space" in line


@pytest.mark.parametrize("duration, fragment", [
    ("99999999999d", "longer than 999999999 days"),
    ("2000000d", "reaches back before the year 1"),
])
def test_a_duration_too_long_for_a_date_is_refused(cli, bank, duration, fragment):
    before = cli.snapshot(bank)
    assert fragment in cli.fails("cases", "prune", "--older-than", duration, "--yes", "--bank", bank)
    assert cli.snapshot(bank) == before


def test_a_summary_file_that_is_not_a_summary_is_refused(cli):
    (cli.folder / "run").mkdir()
    (cli.folder / "run" / "summary.json").write_text("{not json")
    line = cli.fails("eval", "report", "run")
    assert "'run/summary.json' is not a summary written by `memento eval run`" in line and "--out-dir run" in line


@pytest.mark.slow  # imports sentence-transformers and torch
def test_a_folder_that_is_not_a_model_is_refused_as_an_embedder(cli, bank):
    (cli.folder / "not-a-model").mkdir()
    line = cli.fails("cases", "reindex", "--re-embed", "not-a-model", "--bank", bank)
    assert "'not-a-model' is not a sentence-transformers model folder" in line


def test_an_llm_option_the_backend_does_not_have_is_named(cli, bank):
    line = cli.fails("ask", "Who founded Acme?", "--no-learn", "--backend", "openai", "--bank", bank,
                     "--llm-option", "base_url=http://127.0.0.1:9/v1", "--llm-option", "timout_s=5")
    assert "OpenAIConfig has no setting 'timout_s'; the settings are" in line and "timeout_s" in line


@pytest.mark.parametrize("flag", ["--limit", "--offset"])
def test_a_negative_count_is_a_usage_error(cli, bank, flag):
    result = cli("cases", "ls", flag, "-1", "--bank", bank)
    assert result.exit_code == 2 and "Invalid value for '" + flag in result.stderr
    assert "Traceback" not in result.output


# These need CaseBank.import_jsonl / _read_jsonl (memento/bank/casebank.py) to validate each line's
# embedding with memento.embedders.as_vector and to give the line of a repeated id (issue 15, item 6).


@pytest.mark.parametrize("embedding, fragment", [
    ([float("nan")] * 64, "embedding holds 64 NaN or infinite value(s) among 64"),
    ("abc", "embedding is not a list of numbers"),
    ([[1.0], [1.0, 2.0]], "embedding is not a list of numbers"),
    ([1.0, 2.0], "embedding has 2 numbers but this bank's embeddings have 64"),
])
def test_a_bad_embedding_on_an_import_line_names_the_line_and_the_problem(cli, bank, embedding, fragment):
    before = cli.snapshot(bank)
    line = json.dumps({"task": "fine?"}) + "\n" + json.dumps({"task": "bad?", "embedding": embedding}) + "\n"
    (cli.folder / "bad.jsonl").write_text(line)
    message = cli.fails("cases", "import", "bad.jsonl", "--bank", bank)
    assert "line 2" in message and fragment in message and "shape (64,)" not in message
    assert cli.snapshot(bank) == before


def test_an_id_twice_in_one_import_file_names_both_lines(cli, bank):
    before = cli.snapshot(bank)
    lines = [{"id": "x1", "task": "a?"}, {"id": "x2", "task": "b?"}, {"id": "x1", "task": "c?"}]
    (cli.folder / "dup.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    message = cli.fails("cases", "import", "dup.jsonl", "--bank", bank)
    assert "line 3" in message and "line 1" in message and "'x1'" in message
    assert cli.snapshot(bank) == before


@pytest.mark.skipif(not Path("/proc/self").is_dir() or not Path("/dev/null").exists(), reason="needs Linux's /proc and /dev")
def test_a_bank_sqlite_cannot_open_is_one_line(cli):
    assert "cannot open bank '/proc/cases.db' (unable to open database file)" in cli.fails("init", "/proc/cases.db")
    assert "cannot open bank '/dev/null'" in cli.fails("cases", "ls", "--bank", "/dev/null")


def test_stdin_that_is_not_utf8_is_refused(cli, bank):
    before = cli.snapshot(bank)
    assert "stdin is not UTF-8 text" in cli.fails("cases", "add", "-", "--bank", bank, input=b'{"task": "\xff\xfe?"}')
    assert cli.snapshot(bank) == before


def test_an_editor_that_is_not_installed_is_one_line(cli, bank):
    before = cli.snapshot(bank)
    line = cli.fails("cases", "edit", "acme-1", "--bank", bank, env={"EDITOR": "/no/such-editor", "VISUAL": None})
    assert "/no/such-editor: Editing failed" in line and "nothing was changed" in line and "--set" in line
    assert cli.snapshot(bank) == before
